# Two commands on a fresh machine: `make run` (the demo) and `make test` (the whole suite).
# Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck jstest pytest loadtest loadtest-ci emulate bench bench-emulator image constraints screenshot clean

# pykustomize (kustomize's Go library, bundled) renders k8s/ in the tests without kubectl. It is
# installed apart from the test extra because its metadata asks for Python 3.14 although the
# bundled library works on 3.11 and later (tests/deploy renders every overlay with it); pip
# would refuse it otherwise.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,load]'
	$(BIN)/python -m pip install --quiet --ignore-requires-python 'pykustomize==0.1.4'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway demo

test: lint typecheck jstest pytest loadtest-ci

lint: $(STAMP)
	$(BIN)/ruff check gateway tests loadtest
	$(BIN)/ruff format --check gateway tests loadtest

typecheck: $(STAMP)
	$(BIN)/mypy

jstest:
	node --test web/tests/

pytest: $(STAMP)
	$(BIN)/pytest

# 500 Locust users for 60 s while the router hangs, drops, slows down and reboots: one gateway
# process, then a cluster of three replicas sharing a redis-server (about 2 min 15 s).
loadtest: $(STAMP)
	$(BIN)/python loadtest/run_loadtest.py $(LOADTEST_ARGS)

# The short version that runs in CI: 100 users, 20 s, one hang in the middle, both variants.
loadtest-ci: $(STAMP)
	$(BIN)/python loadtest/run_loadtest.py --ci

emulate: $(STAMP)
	$(BIN)/gateway emulate --control-port 8780

# Every benchmark (about 45 minutes on an otherwise idle machine); see loadtest/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python loadtest/bench/bench_all.py

bench-emulator: $(STAMP)
	$(BIN)/python loadtest/bench/bench_emulator.py

# The container image, built offline as CI builds it: a debootstrapped Debian base, wheels made
# here, podman build --network=none. With a registry at hand, `docker build .` is all it takes.
image: $(STAMP)
	$(BIN)/python -m tests.deploy.podman $(IMAGE)

# Re-pin constraints.txt, the exact versions of every runtime dependency (transitive included)
# that the image is built from: resolve the package's requirements afresh in a new virtual
# environment, ignoring the current pins, and write what got installed. Run it to take up new
# releases (security fixes), then `make test` (tests/deploy checks the image against the file).
# It resolves for this machine's Python; CI's image base is Debian bookworm's (3.11).
CONSTRAINTS_VENV := build/constraints-venv
constraints:
	rm -rf $(CONSTRAINTS_VENV)
	$(PYTHON) -m venv $(CONSTRAINTS_VENV)
	PIP_CONSTRAINT= $(CONSTRAINTS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check .
	{ sed -n '/^#/p' constraints.txt; \
	  PIP_CONSTRAINT= $(CONSTRAINTS_VENV)/bin/python -m pip freeze --exclude routeros-traffic-gateway; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(CONSTRAINTS_VENV)
	git diff --stat -- constraints.txt

# Rewrite the README's screenshots (docs/dashboard.png, docs/queues.png) from the browser tests
# that drive the demo's routers.
screenshot: $(STAMP)
	GATEWAY_UPDATE_SCREENSHOT=1 $(BIN)/pytest tests/web/test_dashboard.py tests/web/test_sources.py \
		-k "opens_live or queues_table"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis wheelhouse build
