# Everything installs into .venv at the repo root (operators' tools look there).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint bench token clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --python $(BIN)/python -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Runs the server: embedded Redis, local Ray, 127.0.0.1:8000.
run: $(STAMP)
	exec $(BIN)/python -m server

# Runs the whole test suite (real embedded Redis, real local Ray).
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check actors server loadgen tests bench
	$(BIN)/ruff format --check actors server loadgen tests bench
	$(BIN)/mypy

# Benchmarks (not tests): the seat core, HTTP throughput, search (need wrk: apt-get install wrk).
bench: $(STAMP)
	$(BIN)/python bench/inventory_bench.py
	$(BIN)/python bench/throughput.py --duration 15 --connections 64
	$(BIN)/python bench/search_bench.py --duration 10 --rounds 3 --connections 64

token: $(STAMP)
	@$(BIN)/python -m server token --user $${USER_ID:-alice} $${ADMIN:+--admin}

clean:
	rm -rf $(VENV) data .pytest_cache
