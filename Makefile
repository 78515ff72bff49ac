# costsgd: `make demo` runs the main job, `make test` the whole suite.
# Both create .venv on first use and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A pinned CPU build of torch: an unpinned `torch` pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/costsgd figure2

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_sgd.py --quick

clean:
	rm -rf $(VENV) results build *.egg-info
