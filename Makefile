# labkit: `make demo` sets everything up and grades the reference solutions; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO ?= demo-workspace
# The image's build installs with PIP_EDITABLE= EXTRAS=vision (a wheel, no dev tools); the defaults are CI's.
PIP_EDITABLE ?= -e
EXTRAS ?= dev,vision

.PHONY: install demo test lint clean image image-test bench bench-quick gpu-check dist

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt $(PIP_EDITABLE) '.[$(EXTRAS)]'
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
	$(VENV)/bin/ruff check labkit exercises solutions tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache build dist

# The sdist and the wheel (exercises inside, never the solutions) in $(DIST)/, with hatchling from the dev extra.
DIST ?= dist
dist: install
	rm -rf $(DIST)/labkit-*
	$(VENV)/bin/hatchling build -t sdist -t wheel -d $(DIST)
	@ls -1 $(DIST)/labkit-*

# The course image (docker/Dockerfile), both targets, with podman (or docker): docs/docker.md.
image:
	docker/image-test.sh build

# Build both targets, then prove them: no solutions in the student image, doctor and check inside it, non-root,
# and a class (fork bomb and memory bomb included) graded with --sandbox container in the grader image.
image-test:
	docker/image-test.sh test

# Every speed figure in one table (ratios measured in one run); writes benchmarks/results.json. ~11-18 min.
bench: install
	$(PY) benchmarks/run.py

bench-quick: install
	$(PY) benchmarks/run.py --quick

# The kit on this machine's GPUs (README, "GPU self-test"): every GPU check on the solution and on a wrong variant,
# a full run, bubblewrap and the container with GPUs, doctor; one table (sized for < 8 min on one GPU). Exit 1 on a surprise.
gpu-check: install
	mkdir -p build
	$(VENV)/bin/labkit selftest --gpu --json build/gpu-selftest.json
