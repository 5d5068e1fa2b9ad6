# Seedbank: `make run` starts everything locally, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (venv, packages, browser).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Translations: the catalogues (.po) are committed, their compiled .mo files built by install.
PO := $(wildcard locale/*/LC_MESSAGES/django.po)
MO := $(PO:.po=.mo)
# Management commands that need settings but no database or broker (settings would otherwise
# start the embedded Postgres and Redis).
OFFLINE := DATABASE_URL=postgresql://offline@localhost/offline CELERY_BROKER_URL=memory://
# Only the project's own catalogues: compilemessages would otherwise walk into .venv and var/.
LOCALE_IGNORE := --ignore=.venv --ignore=var --ignore=media --ignore=models

.PHONY: run test install lock browser gettext messages lint typecheck bench models screenshots clean

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

install: $(STAMP) $(MO)

locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po | $(STAMP) gettext
	$(OFFLINE) $(PY) manage.py compilemessages -l $* $(LOCALE_IGNORE)

# After adding or changing a {% translate %} / gettext string: extract every string into the
# catalogues (then translate the new msgstr entries in the .po) and compile them.
# tests/config/test_translations.py fails while a string is missing or untranslated.
messages: install
	$(OFFLINE) $(PY) manage.py makemessages -l zh_Hans --no-obsolete --add-location=file \
		--ignore=.venv --ignore=var --ignore=tests --ignore=bench \
		--ignore=deploy --ignore=media
	$(OFFLINE) $(PY) manage.py compilemessages $(LOCALE_IGNORE)

# gettext's msgfmt and xgettext compile and extract the translations.
gettext:
	@command -v msgfmt >/dev/null 2>&1 || { \
		echo "Installing Debian gettext for the translations"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq gettext >/dev/null; }

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

# The README's screenshots, both languages, from a running `make run` (SEEDBANK_URL).
screenshots: install browser
	$(PY) tools/screenshots.py

bench: install
	$(PY) bench/run.py

# Retrain the scene models shipped in models/ (CPU, seeded; `make run` needs no training).
# The digests in models/DIGESTS change only if the training code or library versions do.
models: install
	$(PY) -m engine.training --out models --force

clean:
	rm -rf var/test
