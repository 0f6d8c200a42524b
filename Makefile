# `make demo` installs skewcheck and runs the main job: a 20 s Locust run against the embedded
# sharded demo target. `make test` installs everything the tests need (Python extras; Chromium,
# promtool, PostgreSQL, Redis and libmemcached from apt; Kafka's, Cassandra's and OpenSearch's jars
# from Maven; Vitess from the Go module proxy) and runs them; CI runs exactly that.
# `make leak-target` builds the bundled Go service and serves it for configs/leak-probe.yaml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LEAK_TARGET_ARGS ?= -mode leaky -addr 127.0.0.1:6060

.PHONY: demo incident install install-test deps test bench leak-target clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-all

install: $(VENV)/.installed-all
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/locust -f locustfiles/orders.py --headless -u 50 -r 25 -t 20s --skew-report-dir skewcheck-report

incident: install
	$(BIN)/locust -f locustfiles/orders.py --headless -u 50 -r 25 -t 20s \
	    --skew-config configs/incident-2020.yaml --skew-stop-on block --skew-report-dir skewcheck-report

deps: install-test
	scripts/system-deps
	$(BIN)/python scripts/kafka-broker fetch
	$(BIN)/python scripts/reference-impls fetch

test: deps
	$(BIN)/python -m pytest -q

leak-target:
	scripts/leak-target $(LEAK_TARGET_ARGS)

bench: install-test
	$(BIN)/python bench/bench_routing.py
	$(BIN)/python bench/bench_plugin_overhead.py
	$(BIN)/python bench/bench_leak_verdict.py
	$(BIN)/python bench/bench_plan.py

clean:
	rm -rf $(VENV) skewcheck-report .pytest_cache
