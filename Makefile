# Everything installs into .venv at the repo root (operators' tools look there).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# the web console's browser tests drive Debian's Chromium (apt, as root: CI runs so)
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: install run test test-ray-up chaos lint bench token clean cluster-redis

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --python $(BIN)/python -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Runs the server: embedded Redis, local Ray, 127.0.0.1:8000.
run: $(STAMP)
	exec $(BIN)/python -m server

$(CHROMIUM_STAMP): $(STAMP)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  echo "installing chromium and chromium-driver (apt) for the console's browser tests"; \
	  { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium chromium-driver; } || { \
	  echo "could not install Chromium; as root run: apt-get install -y" \
	       "--no-install-recommends chromium chromium-driver" >&2; exit 1; }; }
	@touch $(CHROMIUM_STAMP)

# Runs the whole test suite (real embedded Redis, real local Ray, headless Chromium).
test: $(STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# A local Valkey Cluster for trying ticketd on one (docs/deploy.md): 3 primaries + 3
# replicas and a spare on ports 7000-7006 (their cluster bus 17000-17006), data in
# data/cluster; Ctrl-C stops it. Then: TICKETD_REDIS_URL=redis://127.0.0.1:7000 make run
cluster-redis: $(STAMP)
	$(BIN)/python -m actors.storage.valkey_cluster --dir data/cluster --port 7000 --spares 1

# The nemesis soak: a flash sale on a local cluster (Redis, a Ray head and two nodes, two
# front-end workers) under a seeded random schedule of kills and pauses, audited; its seed
# replays it. CHAOS_ARGS overrides, e.g. CHAOS_ARGS="--seed 7 --duration 120".
CHAOS_ARGS ?= --duration 600
chaos: $(STAMP)
	$(BIN)/python -m loadgen.nemesis $(CHAOS_ARGS)

# `ray up` -> book -> `ray down` of cluster.yaml on this machine (head only, a private sshd
# on 127.0.0.1), in Linux namespaces of its own: needs root; installs openssh-server and
# rsync if missing (starting no service). See docs/deploy.md section 2a.
test-ray-up: $(STAMP)
	TICKETD_RAY_UP_TEST=1 $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/cluster/test_ray_up.py

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
