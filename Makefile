# Two entry points, both creating the environment first:
#   make book   build the executable book (every notebook executed, warnings are errors)
#   make test   lint, unit tests, the notebooks under nbval, and the book build
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: book test unit nbval lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[book,test,dask]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

lint: $(STAMP)
	$(BIN)/ruff check ntk_sym tests benchmarks

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests

nbval: $(STAMP)
	$(BIN)/python -m pytest -q -m '' --nbval book --sanitize-with .ci/nbval_sanitize.cfg -p no:cacheprovider

test: lint unit nbval book

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_gram.py

clean:
	rm -rf _build $(VENV)
