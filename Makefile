# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lab bench chromium lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m analytics demo --data data/sample --out reports

test: install chromium
	$(PY) -m pytest -q

# Headless Chromium opens the HTML reports in the tests (Debian package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the report tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lab: install
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebook]'
	$(VENV)/bin/jupyter lab notebooks/

bench: install
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check analytics tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
