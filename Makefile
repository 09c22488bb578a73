# Two commands do all the set-up on a machine that has only python3:
#   make demo   segment the photo bundled with scikit-learn (images go to OUT, default .)
#   make test   run the test suite
#   make fuzz   5,000 mutated image files through the application (every 49th through emseg too)
#   make exactness   rerun the exactness tests under other BLAS, SIMD and numba targets and thread counts
# Each creates, or reuses, the virtual environment in .venv; creating it also compiles the numba kernels.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= .
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz exactness bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,distributed]'
	@echo "Compiling emseg's numba kernels into numba's on-disk cache, once, so no later emseg command waits"
	@echo "for it (about 30 s of CPU time): running emseg demo on china.jpg into $(VENV)/warm-up ..."
	mkdir -p $(VENV)/warm-up
	$(BIN)/emseg demo -o $(VENV)/warm-up
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/emseg demo -o $(OUT)

# hypothesis profile "emseg" (tests/conftest.py): the same examples on every run and machine.
# -n 2: two pytest workers (pytest-xdist), one per core of the 2-core machine the suite is sized for:
# 1 min 52 s instead of 4 min 22 s there; no test depends on another or on the order they run in
test: $(STAMP)
	$(BIN)/python -m pytest -q --hypothesis-profile=emseg -n 2

fuzz: $(STAMP)
	$(BIN)/python tests/fuzz.py --cases 5000 --every-command 49

exactness: $(STAMP)
	$(BIN)/python tests/portability.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
