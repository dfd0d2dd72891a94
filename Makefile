# PartSight: every target sets itself up on a fresh machine (a venv with the packages it needs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= build/demo

.PHONY: setup system-packages test demo bench lint clean

setup: $(STAMP) system-packages

# A real Mosquitto broker (tests, demo) and systemd-analyze (unit checks), installed once when
# missing and we may: root on a Debian-like machine. Elsewhere, install them by hand.
system-packages:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "please install:$$missing"; fi; \
	fi

# torch is pinned to the CPU build this workplace has on disk; a bare `torch` would pull CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[edge,trainer,dev]'
	touch $@

test: setup
	$(PY) -m pytest -q

demo: setup
	$(PY) -m trainer.demo --workdir $(DEMO_DIR)

bench: setup
	$(PY) bench/run.py --out bench/results/latest.json

lint: setup
	$(VENV)/bin/ruff check edge hw trainer tests bench
	$(VENV)/bin/ruff format --check edge hw trainer tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
