# Every target builds the virtual environment it needs when it is missing.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv demo test lint format unit integration bench fuzz serve clean

help:
	@echo "make demo   - run the offline demo on the local AI Search server"
	@echo "make test   - lint, type-check and run the whole test suite (what CI runs)"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make bench  - run the benchmarks and print side-by-side ratios"
	@echo "make fuzz   - fuzz every route of the local server (5000 requests; FUZZ_ARGS=...)"
	@echo "make serve  - start aisearch-local on 127.0.0.1:8787 with the sample corpus"

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.6"
	$(VENV)/bin/uv pip install --quiet --python $(PY) --index-url https://pypi.org/simple -e ".[all]" --group dev
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/unasync.py --check
	$(PY) -c "import aisearch, sys; bad = [m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index', 'aisearch_local', 'starlette', 'numpy')]; assert not bad, bad"

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: $(STAMP)
	$(PY) -m pytest tests/unit_tests --disable-socket --allow-unix-socket $(PYTEST_ARGS)

integration: $(STAMP)
	$(PY) -m pytest tests/integration_tests $(PYTEST_ARGS)
	$(PY) -m pytest --nbmake --nbmake-timeout=300 -p no:cacheprovider notebooks $(PYTEST_ARGS)

test: lint unit integration

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

fuzz: $(STAMP)
	$(PY) benchmarks/fuzz_server.py $(FUZZ_ARGS)

serve: $(STAMP)
	$(VENV)/bin/aisearch-local serve --host 127.0.0.1 --port 8787 --data-dir .aisearch-data --sample-corpus --instance coffee

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
