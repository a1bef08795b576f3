# Two commands a new user needs:  `make serve`  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test test-fast install browser nginx postgres lint gate

$(BIN)/playbook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/playbook

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's nginx for tests/test_deploy.py, which runs `nginx -t` and its own nginx on free
# loopback ports. Installing starts no service where none can run (Debian's policy-rc.d); on a
# machine booted with systemd the one started by the package is stopped and disabled.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null && \
	  if [ -d /run/systemd/system ]; then systemctl disable --now --quiet nginx; fi; }

# Debian's PostgreSQL server binaries: the tests start a throwaway server of their own
# (tests/postgres.py) to run the store on both backends and two replicas on one database.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null && \
	  if [ -d /run/systemd/system ]; then systemctl disable --now --quiet postgresql; fi; }

serve: install
	$(BIN)/playbook build
	$(BIN)/playbook serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app
	$(BIN)/lint-imports
	$(BIN)/playbook lint

# The quality gate on the labelled seed queries, beside the baselines (fails on a regression).
gate: install
	$(BIN)/playbook eval knowledge/eval/queries.jsonl --compare \
	  --fail-under top1=0.95 --fail-under recall_at_3=0.99 \
	  --fail-under abstention=0.90 --fail-under wrong_refusal=0.03

test: install browser nginx postgres lint gate
	$(BIN)/python -m pytest -q

# The inner loop: every test but those that load the real model, drive the browser or fuzz.
test-fast: install postgres
	$(BIN)/python -m pytest -q -n 2 -m "not model and not browser and not fuzz"
