# `make demo` installs skewcheck and runs the main job; `make test` installs everything the
# tests need (Python extras, Chromium and promtool from apt, Kafka's jars from Maven) and runs them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo install deps test bench clean

$(BIN)/skewcheck: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/skewcheck

demo: install
	$(BIN)/skewcheck plan configs/incident-2020.yaml --out skewcheck-report; \
	  code=$$?; echo "exit code $$code (1 = the gate blocks the incident scenario)"; [ $$code -eq 1 ]

deps: install
	@if [ -x scripts/system-deps ]; then scripts/system-deps; fi
	@if [ -x scripts/kafka-broker ]; then scripts/kafka-broker fetch; fi

test: deps
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/bench_routing.py

clean:
	rm -rf $(VENV) skewcheck-report .pytest_cache
