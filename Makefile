# costsgd: `make demo` runs the main job, `make test` the whole suite, `make docs` the docs site.
# Each creates .venv on first use and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A pinned CPU build of torch: an unpinned `torch` pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test docs lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/costsgd figure2

# tests/test_docs.py builds the docs site strictly, so `make test` fails on a docs warning too.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The docs site, into site/: any warning or broken link fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_sgd.py --quick

clean:
	rm -rf $(VENV) results build site *.egg-info
