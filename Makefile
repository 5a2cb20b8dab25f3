# rightsizer — `make demo` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus victoria-metrics

.PHONY: all demo test lint unit prometheus-tests operator-tests e2e bench install system-deps crds clean

all: test

system-deps:
	@missing=""; command -v promtool >/dev/null || missing="prometheus"; \
	command -v victoria-metrics >/dev/null || missing="$$missing victoria-metrics"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  pkill -x prometheus 2>/dev/null || true; pkill -x victoria-metrics 2>/dev/null || true; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@$(PIP) install -q -e '.[test]'
	@touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(VENV)/bin/rightsizer demo --out demo-out

lint: install
	$(VENV)/bin/ruff check operator tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest tests/unit -q

test: install lint
	$(PY) -m pytest tests -q -p no:cacheprovider

# End-to-end: a real kube-apiserver, etcd and controller manager on loopback (binaries from
# scripts/build-control-plane.sh: ~14 min the first time, cached afterwards), the operator
# as a subprocess with the Helm chart's ServiceAccount, a real Prometheus. Needs Go >= 1.25
# for the first build.
e2e: install
	$(PY) -m pytest tests/e2e -q

bench: install
	$(PY) benchmarks/scale.py

crds: install
	$(PY) -m rightsizer.api.crdgen crds charts/rightsizer/crds

clean:
	rm -rf $(VENV) demo-out .mypy_cache .ruff_cache .pytest_cache
