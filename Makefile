# labkit: `make demo` sets everything up and grades the reference solutions; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO ?= demo-workspace

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev,vision]'
	touch $@

install: $(VENV)/.installed

# A workspace holding the reference solutions, graded exercise by exercise, then the scorecard.
demo: install
	rm -rf $(DEMO)
	$(VENV)/bin/labkit init $(DEMO)
	cp solutions/exercise*.py $(DEMO)/
	cd $(DEMO) && ../$(VENV)/bin/labkit check --all

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check labkit exercises solutions tests

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache build dist
