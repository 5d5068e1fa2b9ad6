"""Prompt-only results in a real browser: an imported prompt CSV (no pictures) shows under the
records, marked as such, with no picture of its own; signed in, "Render this prompt with a
model here" opens the generate form prefilled; a record rendered from it says where its prompt
came from. axe-core finds nothing serious; SEEDBANK_SHOTS=<folder> keeps the screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from archive.models import PromptRender, SourcePrompt
from archive.services.imports import import_rows, import_run_start
from archive.services.prompts import source_prompts_embed
from engine.imports.discover import rows
from generator.services.records import image_keywords_index
from tests.e2e.conftest import serious_violations, shot
from tests.factories import ImageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_prompt_only_results_render_form_and_lineage(
    live_server, media_root, tiny_sd_path, tmp_path, browser: Browser, django_user_model, viewport
):
    record = ImageFactory(prompt="a lighthouse on a cliff, oil painting")
    image_keywords_index(image_ids=[record.pk])
    (tmp_path / "prompts.csv").write_text(
        "prompt,seed,steps,cfg,width,height,sampler,model\n"
        '"a lighthouse in a storm, waves breaking",42,30,7.5,512,512,Euler a,sd-xl-base\n'
        '"lighthouse keeper reading by lamplight",43,30,7.5,512,768,DPM++ 2M,sd-xl-base\n'
        '"a bowl of ramen",44,30,7,512,512,Euler,sd-xl-base\n',
        encoding="utf-8",
    )
    run = import_run_start(sources=[str(tmp_path)], mapping={})
    import_rows(run=run, rows=rows([tmp_path]))
    source_prompts_embed()
    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})

    page.goto(f"{live_server.url}/search/?q=lighthouse")
    cards = page.get_by_test_id("prompt-only-card")
    expect(cards.first).to_contain_text("Prompt only — imported from csv, not rendered here")
    expect(cards.locator("img")).to_have_count(0)  # no picture stands for a prompt
    expect(page.locator("#feed .card")).to_have_count(1)  # the record is still a record
    assert serious_violations(page) == []
    shot(page, f"search-prompt-only-{width}.png")

    django_user_model.objects.create_user("ada", password="pw-for-tests-123")
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("input[name=username]").fill("ada")
    page.locator("input[name=password]").fill("pw-for-tests-123")
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{live_server.url}/search/?q=lighthouse+storm")
    page.get_by_test_id("render-prompt").first.click()
    expect(page.get_by_test_id("prompt-of-notice")).to_be_visible()
    expect(page.locator("textarea[name=prompt]")).to_have_value(
        "a lighthouse in a storm, waves breaking"
    )
    expect(page.locator("input[name=seed]")).to_have_value("42")
    assert serious_violations(page) == []
    shot(page, f"generate-from-prompt-{width}.png")

    row = SourcePrompt.objects.get(prompt__startswith="a lighthouse in a storm")
    rendered = ImageFactory(prompt=row.prompt, seed=42)
    PromptRender.objects.create(image=rendered, source=row.source)
    page.goto(f"{live_server.url}/images/{rendered.pk}/")
    expect(page.get_by_test_id("rendered-from-prompt")).to_contain_text("prompts.csv line 2")
    assert serious_violations(page) == []
    shot(page, f"record-from-prompt-{width}.png")
    page.close()
