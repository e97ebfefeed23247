# Two commands for a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each creates .venv and installs the project (editable, with dev extras) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the main job on the embedded default (SQLite + embedded NATS): the sample school.
demo: $(STAMP)
	$(BIN)/sferum-audit demo

## The whole test suite: lint, strict typing, and every test (PostgreSQL ones when
## SFERUM_AUDIT_TEST_POSTGRES_URL is set; .ci/run sets it).
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The folders are mapped into the sferum_audit namespace at install time; mypy reads
# them through a tree of links with the installed names.
typecheck: $(STAMP)
	@mkdir -p build/typecheck/sferum_audit
	@for d in domain application projections consumers cli integrity web; do \
		ln -sfn ../../../$$d build/typecheck/sferum_audit/$$d; done
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml \
		-p sferum_audit.domain -p sferum_audit.application -p sferum_audit.projections \
		-p sferum_audit.consumers -p sferum_audit.cli -p sferum_audit.integrity \
		-p sferum_audit.web

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis sferum-audit-data
