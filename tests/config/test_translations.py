"""The zh-Hans catalogue is complete and current, and pages speak the visitor's language.

A new `{% translate %}` or gettext string that nobody added to locale/zh_Hans fails here (run
`make messages`, then fill in its msgstr), and so does a msgstr left empty or fuzzy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django import forms
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import translation
from django.utils.translation import gettext_lazy
from django.utils.translation.reloader import translation_file_changed

from engine.recipe import PRECISIONS, Recipe, RecipeLimits, recipe_errors, recipe_fields, spec
from engine.schedulers import SCHEDULERS
from generator.i18n import translated

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = REPO_ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# What makemessages reads (the Makefile's `messages` leaves out tests and bench).
SOURCES = [
    "config",
    "engine",
    "gallery",
    "generator",
    "archive",
    "search",
    "templates",
    "static",
    "locale",
]
# Placeholders a translation must keep: %(name)s (or d, r, g) and {name}.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdrg]|\{[a-z_]+\}")


@dataclass
class Entry:
    context: str | None = None
    msgid: str = ""
    plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.context, self.msgid)


def read_catalogue(path: Path) -> dict[tuple[str | None, str], Entry]:
    """The entries of a .po file by (msgctxt, msgid), header and obsolete entries left out."""
    entries: dict[tuple[str | None, str], Entry] = {}
    entry, part = Entry(), ""

    def finish() -> None:
        nonlocal entry, part
        if entry.msgid:
            entries[entry.key] = entry
        entry, part = Entry(), ""

    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            finish()
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue  # comments, locations, obsolete (#~) entries
        elif line.startswith('"'):
            text = ast.literal_eval(line)
            if part == "msgstr":
                entry.msgstrs[-1] += text
            elif part == "msgctxt":
                entry.context = (entry.context or "") + text
            elif part == "msgid_plural":
                entry.plural = (entry.plural or "") + text
            else:
                entry.msgid += text
        else:
            keyword, _, quoted = line.partition(" ")
            text = ast.literal_eval(quoted)
            if keyword.startswith("msgstr"):
                part = "msgstr"
                entry.msgstrs.append(text)
            elif keyword == "msgctxt":
                part, entry.context = keyword, text
            elif keyword == "msgid_plural":
                part, entry.plural = keyword, text
            else:
                part, entry.msgid = keyword, text
    return entries


def describe(keys: set[tuple[str | None, str]]) -> str:
    return "\n".join(
        f"  {msgid!r}" + (f" (context {context!r})" if context else "")
        for context, msgid in sorted(keys, key=lambda key: (key[1], key[0] or ""))
    )


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    entries = read_catalogue(CATALOGUE)
    assert len(entries) > 100  # the parser read the catalogue, not nothing
    untranslated = {key for key, entry in entries.items() if not all(entry.msgstrs)}
    fuzzy = {key for key, entry in entries.items() if "fuzzy" in entry.flags}
    assert not untranslated, f"msgstr missing in {CATALOGUE}:\n{describe(untranslated)}"
    assert not fuzzy, f"fuzzy (unchecked) translations in {CATALOGUE}:\n{describe(fuzzy)}"


def test_translations_keep_their_placeholders() -> None:
    wrong = {
        key
        for key, entry in read_catalogue(CATALOGUE).items()
        for msgstr in entry.msgstrs
        if sorted(PLACEHOLDER.findall(entry.plural or entry.msgid))
        != sorted(PLACEHOLDER.findall(msgstr))
    }
    assert not wrong, f"translations that lose or add a placeholder:\n{describe(wrong)}"


def test_chinese_labels_end_with_a_full_width_colon() -> None:
    """Chinese punctuation is full width: a label says "状态：", not "状态:" (an ASCII colon
    stays only inside filter syntax such as size:512x512, followed by no space)."""
    ascii_colon = re.compile(r":(\s|$)")
    wrong = {
        key
        for key, entry in read_catalogue(CATALOGUE).items()
        for msgstr in entry.msgstrs
        if ascii_colon.search(msgstr.replace("%(", "").replace("https:", ""))
    }
    assert not wrong, f"ASCII colons in Chinese translations:\n{describe(wrong)}"


def test_form_labels_end_with_a_full_width_colon_in_chinese() -> None:
    """Django's own zh-Hans catalogue keeps ":" as every form's label suffix; ours wins."""

    class Form(forms.Form):
        seed = forms.IntegerField(label=gettext_lazy("Seed"))

    with translation.override("zh-hans"):
        assert Form()["seed"].label_tag().endswith("种子：</label>")
    with translation.override("en"):
        assert Form()["seed"].label_tag().endswith("Seed:</label>")


def test_the_catalogue_holds_exactly_the_strings_of_the_code(tmp_path: Path) -> None:
    """makemessages on a copy of the sources: nothing added, nothing left over."""
    for name in SOURCES:
        shutil.copytree(
            REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    shutil.copy(REPO_ROOT / "manage.py", tmp_path)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # Settings without the embedded servers: makemessages needs no database or broker.
        "DATABASE_URL": "postgresql://offline@localhost/offline",
        "CELERY_BROKER_URL": "memory://",
        "SEEDBANK_VAR_DIR": str(tmp_path / "var"),
        # Imports resolve in the repository (the copy is only what makemessages reads).
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    committed = set(read_catalogue(CATALOGUE))
    current = set(read_catalogue(tmp_path / CATALOGUE.relative_to(REPO_ROOT)))
    missing, stale = current - committed, committed - current
    assert not missing, (
        "strings marked for translation but not in the catalogue (run `make messages` and "
        f"translate them in {CATALOGUE.relative_to(REPO_ROOT)}):\n{describe(missing)}"
    )
    assert not stale, f"catalogue entries no code uses (run `make messages`):\n{describe(stale)}"


def test_the_engines_labels_and_messages_reach_the_catalogue() -> None:
    # The engine is Django-free: it marks its English (engine.messages) and the web layer
    # translates it. Every recipe label and choice word, and a message with values, in Chinese.
    with translation.override("zh-hans"):
        for recipe_field in recipe_fields():
            about = spec(recipe_field)
            assert translated(about.label) != about.label, about.label
            for _value, word in about.choices:
                assert word in SCHEDULERS or word in PRECISIONS or translated(word) != word
        limits = RecipeLimits()
        errors = recipe_errors(Recipe(prompt="", steps=999), limits)
        steps = translated(errors["steps"][0])
        assert steps != errors["steps"][0] and str(limits.max_steps) in steps


# --- pages in the visitor's language -------------------------------------------------------

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans,zh;q=0.9,en;q=0.5"}
CHINESE = ["登录", "注册", "搜索", "这里的每张图片都是一份配方"]
ENGLISH = ["Sign in", "Sign up", ">Search<", "Every image here is a recipe"]


@pytest.fixture(scope="module")
def compiled_catalogue() -> None:
    """The .mo beside the .po, built if missing or older (`make install` builds it too)."""
    compiled = CATALOGUE.with_suffix(".mo")
    if not compiled.exists() or compiled.stat().st_mtime < CATALOGUE.stat().st_mtime:
        subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(CATALOGUE)], check=True)
        translation_file_changed(None, compiled)  # forget catalogues this process has loaded


def assert_chinese(html: str) -> None:
    assert '<html lang="zh-hans">' in html
    assert all(text in html for text in CHINESE), [t for t in CHINESE if t not in html]
    assert not [text for text in ENGLISH if text in html]


def assert_english(html: str) -> None:
    assert '<html lang="en">' in html
    assert all(text in html for text in ENGLISH), [t for t in ENGLISH if t not in html]
    assert not [text for text in CHINESE if text in html]


@pytest.mark.django_db
@pytest.mark.usefixtures("compiled_catalogue")
def test_accept_language_chooses_chinese_and_english_stays_the_default() -> None:
    assert_chinese(Client().get("/", **ZH).content.decode())
    assert_english(Client().get("/").content.decode())
    assert_english(Client().get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode())


@pytest.mark.django_db
@pytest.mark.usefixtures("compiled_catalogue")
def test_the_switcher_remembers_the_choice_without_a_csrf_token() -> None:
    visitor = Client(enforce_csrf_checks=True)
    home = visitor.get("/").content.decode()
    assert 'action="/i18n/setlang/"' in home and 'value="zh-hans"' in home
    assert "csrfmiddlewaretoken" not in home
    switched = visitor.post("/i18n/setlang/", {"language": "zh-hans", "next": "/search/?q=fox"})
    assert switched.status_code == 302 and switched["Location"] == "/search/?q=fox"
    assert_chinese(visitor.get("/").content.decode())
    # The cookie outranks the browser's own preference, both ways.
    assert_chinese(visitor.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    visitor.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert_english(visitor.get("/", **ZH).content.decode())
    # Somewhere else than this site is not where the switch sends anyone.
    away = visitor.post("/i18n/setlang/", {"language": "en", "next": "https://evil.example/"})
    assert away["Location"] == "/"


@pytest.mark.django_db
@pytest.mark.usefixtures("compiled_catalogue")
def test_a_cached_page_is_served_only_in_its_own_language() -> None:
    cache.clear()
    with override_settings(SEEDBANK_PAGE_CACHE_SECONDS=60):
        english = Client().get("/")
        assert english.headers["X-Page-Cache"] == "miss"
        chinese = Client().get("/", **ZH)
        assert chinese.headers["X-Page-Cache"] == "miss"
        assert_chinese(chinese.content.decode())
        again = Client().get("/")
        assert again.headers["X-Page-Cache"] == "hit"
        assert_english(again.content.decode())
        by_cookie = Client()
        by_cookie.cookies["django_language"] = "zh-hans"
        cached = by_cookie.get("/")
        assert cached.headers["X-Page-Cache"] == "hit"
        assert_chinese(cached.content.decode())
    assert "Accept-Language" in english["Vary"] and "Cookie" in english["Vary"]
    cache.clear()


@pytest.mark.django_db
@pytest.mark.usefixtures("compiled_catalogue")
def test_the_error_pages_and_form_errors_speak_chinese(user) -> None:
    missing = Client().get("/images/999999/", **ZH)
    assert missing.status_code == 404 and "页面不存在" in missing.content.decode()
    visitor = Client()
    visitor.force_login(user)
    refused = visitor.post("/generate/", {"prompt": "a fox", "model_version": 999999}, **ZH)
    html = refused.content.decode()
    assert refused.status_code == 400 and "未知的模型版本" in html and "提示词" in html


@pytest.mark.django_db
@pytest.mark.usefixtures("compiled_catalogue")
def test_the_json_api_stays_english() -> None:
    response = Client().get("/api/v1/images", {"q": "fox", "model": "nope"}, **ZH)
    assert response.status_code == 400
    assert "Select a valid choice" in str(response.json()["errors"])
    assert "Content-Language" not in response.headers or response["Content-Language"] == "en"
