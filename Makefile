# Seedbank: `make run` starts everything locally, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (venv, packages, browser).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lock browser lint typecheck bench models clean

# Every package pinned with its sha256 (requirements.lock): a new diffusers or transformers
# release cannot change pixels under us. The project itself goes in without dependencies.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# After changing dependencies in pyproject.toml (or the torch pin in constraints.txt):
# re-resolve and re-hash everything, then commit requirements.lock.
lock: install
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --extra dev --strip-extras -c constraints.txt \
		-o requirements.lock pyproject.toml

install: $(STAMP)

run: install
	$(PY) manage.py runstack

# Debian chromium drives the browser tests; a CJK font renders Chinese prompts.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

# import-linter keeps the layers one-way and the engine free of Django (pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# django-stubs imports settings; explicit URLs keep mypy from starting the embedded servers
# (mypy exits with os._exit, which would leave pgserver's handle list stale).
typecheck: install
	DATABASE_URL=postgresql://typecheck@localhost/typecheck CELERY_BROKER_URL=memory:// \
		$(VENV)/bin/mypy

test: install browser lint typecheck
	$(PY) manage.py makemigrations --check --dry-run --settings=config.settings_test
	$(PY) -m pytest

bench: install
	$(PY) bench/run.py

# Retrain the scene models shipped in models/ (CPU, seeded; `make run` needs no training).
# The digests in models/DIGESTS change only if the training code or library versions do.
models: install
	$(PY) -m engine.training --out models --force

clean:
	rm -rf var/test
