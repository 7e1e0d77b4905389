# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lab lab-env bench chromium lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The package's bytecode, written even where PYTHONDONTWRITEBYTECODE is set (an editable install
# leaves it to Python, which then compiles every module in every new process: about 0.35 s of each
# command's, kernel's and test worker's start).
install: $(STAMP)
	$(PY) -m compileall -q analytics

demo: install
	$(PY) -m analytics demo --data data/sample --out reports

# Everything: unit tests, docstring examples, the report notebooks, Chromium, Dask; one worker
# process per core, each test file on one worker (its module fixtures, which run reports, run
# once), the sample report pack run once for all workers (tests/conftest.py).
# Each test worker reads the test modules as pytest rewrote them on an earlier run (their bytecode
# in tests/__pycache__, git-ignored), also where PYTHONDONTWRITEBYTECODE is set: collecting them
# afresh costs each worker about 3.5 s.
test: install chromium lab-env
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n auto --dist loadfile

# The fast tier (under a minute on two cores): leaves out the tests marked slow in
# tests/conftest.py, in two worker processes.
test-fast: install
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" -n 2

# Headless Chromium opens the HTML reports in the tests (Debian package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the report tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# JupyterLab lives in its own environment, $(VENV)/lab: its dependencies make every nbformat
# import (each report run) about 2 s slower. Its Python kernel is the project's $(VENV).
LAB := $(VENV)/lab
$(LAB)/.installed: $(STAMP)
	$(PYTHON) -m venv $(LAB)
	$(LAB)/bin/python -m pip install --quiet --disable-pip-version-check 'jupyterlab>=4' \
	  "jupyterlab_widgets==$$($(PY) -c 'import importlib.metadata as m; print(m.version("jupyterlab_widgets"))')"
	# ipykernel's install leaves its temporary folder behind: give it one inside $(LAB) and remove it
	mkdir -p $(LAB)/tmp
	TMPDIR="$(abspath $(LAB))/tmp" $(PY) -m ipykernel install --prefix "$(abspath $(LAB))" --name python3 \
	  --display-name 'Python 3 (ipykernel)' >/dev/null 2>&1
	rm -rf $(LAB)/tmp
	mkdir -p $(LAB)/share/jupyter/lab/settings
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
	  > $(LAB)/share/jupyter/lab/settings/overrides.json
	touch $@

lab-env: $(LAB)/.installed

# The coding-choice explorer (notebooks/explorer.ipynb) in JupyterLab; --allow-root as root.
lab: lab-env
	$(LAB)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/explorer.ipynb

bench: install
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check analytics tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
