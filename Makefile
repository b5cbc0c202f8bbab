# zkflock — developer entry points. `make setup` is idempotent: a second run does nothing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ZK_JAR := /usr/share/java/zookeeper.jar
SERVER_DIR := .zkflock/server

.PHONY: setup system-deps sharedfs-deps demo test lint torture torture-shared bench slow clean distclean

setup: system-deps sharedfs-deps $(VENV)/.stamp

# ZooKeeper 3.8 and Java 17 come from Debian's packages (default-jre-headless is
# a dependency of zookeeper; it is named too in case java was removed since).
system-deps:
	@if [ -f $(ZK_JAR) ] && command -v java >/dev/null 2>&1; then exit 0; fi; \
	sudo=""; \
	if [ "$$(id -u)" != 0 ]; then \
	  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else \
	    echo "zkflock: ZooKeeper is missing: install the Debian packages 'zookeeper' and 'default-jre-headless' as root, then run 'make setup' again" >&2; exit 1; \
	  fi; \
	fi; \
	echo "zkflock: installing ZooKeeper and Java with apt-get"; \
	if ! { $$sudo apt-get update -q && \
	       $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper default-jre-headless; } \
	   || [ ! -f $(ZK_JAR) ] || ! command -v java >/dev/null 2>&1; then \
	  echo "zkflock: could not install ZooKeeper: install the Debian packages 'zookeeper' and 'default-jre-headless' (Java 17), then run 'make setup' again" >&2; \
	  exit 1; \
	fi

# GlusterFS (server and FUSE client) for the tests that mount one volume twice
# (tests/test_shared_volume.py, zkflock torture --shared-volume). Installing
# starts no daemon: the tests start glusterd themselves (_harness/sharedfs.py).
sharedfs-deps:
	@if command -v glusterd >/dev/null 2>&1 && command -v gluster >/dev/null 2>&1 \
	   && command -v mount.glusterfs >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "zkflock: GlusterFS is missing: as root, 'apt-get install -y glusterfs-server glusterfs-client', then run 'make setup' again (the shared-volume tests mount FUSE volumes, which needs root)" >&2; exit 1; \
	fi; \
	echo "zkflock: installing GlusterFS with apt-get"; \
	if ! { apt-get update -q && \
	       DEBIAN_FRONTEND=noninteractive apt-get install -y -q glusterfs-server glusterfs-client; } \
	   || ! command -v glusterd >/dev/null 2>&1; then \
	  echo "zkflock: could not install GlusterFS: install the Debian packages 'glusterfs-server' and 'glusterfs-client' (10.x), then run 'make setup' again" >&2; \
	  exit 1; \
	fi

# Debian's own python3 needs python3-venv for this; pyenv's and python.org's have it.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  echo "zkflock: '$(PYTHON) -m venv' failed; installing Debian's python3-venv"; \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv \
	    && $(PYTHON) -m venv $(VENV); } || { \
	  echo "zkflock: cannot create a virtualenv: install python3-venv (Debian) or use a Python with venv, then run 'make setup' again" >&2; exit 1; }; }

# Reinstalled only when pyproject.toml is newer than the stamp.
$(VENV)/.stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/zkflock demo

test: setup
	$(BIN)/python -m pytest -q
	@$(MAKE) --no-print-directory lint

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

torture: setup
	$(BIN)/zkflock torture --nemesis all --clients 4 --duration 60

# The long shared-volume run: 4 clients, 2 per mount of one GlusterFS volume.
torture-shared: setup
	$(BIN)/zkflock torture --shared-volume --nemesis pause --clients 4 --duration 90

bench: setup
	$(BIN)/zkflock bench

# Across a delayed path (0.1 / 0.5 / 1 ms each way) and on a 3-node ensemble
# (spread and on a follower, forceSync no and yes; a hundred processes).
bench-network: setup
	$(BIN)/zkflock bench --no-loopback --delay 0.1 --delay 0.5 --delay 1 --ensemble \
	  --procs 2,4,16 --out benchmarks/results/network

slow: setup
	$(BIN)/python -m pytest -q -m slow

# The container scenario (docker-compose.yml, then the 3-node ensemble with its
# leader killed), as root on a machine without a registry: see docker/compose-test.
.PHONY: compose-test
compose-test: setup
	bash docker/compose-test

clean:
	@if [ -x $(BIN)/zkflock ] && [ -f $(SERVER_DIR)/state.json ]; then \
	  $(BIN)/zkflock server stop --dir $(SERVER_DIR) || true; fi
	rm -rf .zkflock build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
