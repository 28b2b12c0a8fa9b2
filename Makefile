# parkflow: `make demo` runs the main job on embedded defaults; `make test` runs the test suite.
# Both create the virtual environment themselves; `make test` also installs Mosquitto and
# InfluxDB from the OS packages when missing (as root on Debian/Ubuntu).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint check os-packages bench dashboards clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "parkflow needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/parkflow demo

os-packages:
	@bash deploy/os-packages.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Two workers, each with its own servers on their own ports (the suite waits on real brokers,
# databases and a browser more than it computes): about half the wall time on 2 cores.
test: $(STAMP) os-packages lint
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

dashboards: $(STAMP)
	$(PY) -m dashboards.build

bench: $(STAMP) os-packages
	$(PY) -m bench.ingest --quick
	$(PY) -m bench.detect --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
