# Seedbank: `make run` starts everything locally, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (venv, packages, browser).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install browser lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# constraints.txt pins the CPU build of torch for every install step.
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

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

clean:
	rm -rf var/test
