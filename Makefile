# Two entry points, both creating the environment first:
#   make book   build the executable book (every notebook executed, warnings are errors)
#   make test   lint, unit tests, every notebook executed and compared under nbval, then the
#               book built from those committed, nbval-checked outputs (warnings are errors), so
#               the notebooks run once rather than twice
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: book book-check browser test unit nbval lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[book,test,dask,sklearn]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

lint: $(STAMP)
	$(BIN)/ruff check ntk_sym tests tests_browser benchmarks

# Tests and notebooks run on one worker per core (pytest-xdist); --dist loadfile keeps each
# file, and so each notebook's cells and kernel, on one worker.
WORKERS ?= $(shell $(PYTHON) -c "import os; print(os.cpu_count() or 1)")

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile tests

nbval: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile -m '' --nbval book --nbval-sanitize-with .ci/nbval_sanitize.cfg -p no:cacheprovider

# Sphinx side of the book (links, citations, cross-references, autodoc) without re-executing.
book-check: $(STAMP)
	mkdir -p _build
	sed 's/execute_notebooks: force/execute_notebooks: "off"/' _config.yml > _build/_config_check.yml
	$(BIN)/jupyter-book build . --config _build/_config_check.yml --warningiserror --nitpick --keep-going

# The built pages in headless Chromium, network off: equations typeset by the bundled MathJax.
browser: $(STAMP)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } \
	  || { echo "browser: needs the system packages chromium and chromium-driver (Debian)"; exit 1; }
	$(BIN)/python -m pytest -q -p no:cacheprovider tests_browser

test: lint unit nbval book-check browser

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_gram.py

clean:
	rm -rf _build $(VENV)
