# costsgd: `make demo` runs the main job, `make test` the whole suite, `make docs` the docs site.
# Each creates .venv on first use and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A pinned CPU build of torch: an unpinned `torch` pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
# verl caps transformers below the one TRL runs on here, so verl's tests get their own venv,
# pinned by requirements/verl.txt.
VERL_VENV  ?= .venv-verl
VERL_PY    := $(VERL_VENV)/bin/python
VERL_STAMP := $(VERL_VENV)/.installed
VERL_TESTS := tests/test_audit_verl.py tests/test_integrations_verl.py tests/test_integrations_verl_package.py tests/test_integrations_verl_trainer.py costsgd/integrations/verl.py costsgd/integrations/verl_trainer.py
# Code blocks of the docs marked <!-- run: verl --> run there (tests/test_code_blocks.py).
VERL_TESTS += tests/test_code_blocks.py

.PHONY: demo test test-verl docs lint bench clean venv venv-verl

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	$(VENV)/bin/costsgd info --build
	touch $(STAMP)

venv-verl: $(VERL_STAMP)

$(VERL_STAMP): requirements/verl.txt pyproject.toml Makefile
	test -x $(VERL_PY) || $(PYTHON) -m venv $(VERL_VENV)
	$(VERL_PY) -m pip install -q "$(TORCH_PIN)"
	$(VERL_PY) -m pip install -q -r requirements/verl.txt
	$(VERL_PY) -m pip install -q --no-deps -e .
	touch $(VERL_STAMP)

demo: $(STAMP)
	$(VENV)/bin/costsgd figure2

# tests/test_docs.py builds the docs site strictly, so `make test` fails on a docs warning too.
test: $(STAMP) $(VERL_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)
	$(VERL_PY) -m pytest $(PYTEST_ARGS) $(VERL_TESTS)

test-verl: $(VERL_STAMP)
	$(VERL_PY) -m pytest $(PYTEST_ARGS) $(VERL_TESTS)

# The docs site, into site/: any warning or broken link fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_sgd.py --quick

clean:
	rm -rf $(VENV) $(VERL_VENV) results build site *.egg-info
