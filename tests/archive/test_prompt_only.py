"""Prompt-only records: an imported prompt CSV (no pictures, models not here) is findable by
words and by meaning, marked as such on the search page and in the API, and "Render this
prompt with a model here" makes a new record whose lineage points at the row."""

from __future__ import annotations

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse

from archive.models import PromptRender, SourcePrompt, SourceRecord
from archive.selectors import image_prompt_source, prompt_only_search
from archive.services.imports import import_rows, import_run_start
from archive.services.prompts import source_prompts_embed
from engine import embedder
from engine.imports.discover import rows
from generator.models import Image
from generator.services.rendering import render_job_run
from search.selectors import active_embedding_model

pytestmark = pytest.mark.django_db

PROMPTS = [
    "a lighthouse on a cliff at dawn",
    "a bowl of ramen with chopsticks",
    "长城上的日落",
    "an astronaut riding a horse on mars",
]


@pytest.fixture
def imported(tmp_path, media_root, tiny_sd_path, sent, django_capture_on_commit_callbacks):
    """A prompt CSV with no pictures, for a model this site does not have."""
    lines = ["prompt,negative_prompt,seed,steps,cfg,width,height,sampler,model"]
    lines += [f'"{p}",blurry,{i + 7},20,7,64,64,Euler,sd-xl-base' for i, p in enumerate(PROMPTS)]
    (tmp_path / "prompts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True):
        run = import_run_start(sources=[str(tmp_path)], mapping={})
        run = import_rows(run=run, rows=rows([tmp_path]))
    assert run.needs_model == len(PROMPTS)
    assert "archive.tasks.embed_source_prompts" in [name for name, *_ in sent]
    assert source_prompts_embed() == len(PROMPTS)
    assert source_prompts_embed() == 0  # idempotent: nothing left to embed
    return run


def test_an_imported_prompt_csv_becomes_prompt_only_rows(imported) -> None:
    assert SourcePrompt.objects.count() == len(PROMPTS)
    assert not Image.objects.exists()  # never shown as a record
    row = SourcePrompt.objects.get(prompt=PROMPTS[0])
    assert row.known == {
        "seed": 7,
        "steps": 20,
        "guidance": 7.0,
        "width": 64,
        "height": 64,
        "scheduler": "Euler",
    }
    assert row.embedding_model == active_embedding_model().name
    assert row.source.state == SourceRecord.State.NEEDS_MODEL


def test_prompts_are_found_by_keyword(imported) -> None:
    model = active_embedding_model()
    hits = prompt_only_search(query="ramen", model=model, mode="keyword").hits
    assert [hit.source_prompt.prompt for hit in hits] == [PROMPTS[1]]
    hits = prompt_only_search(query="长城", model=model, mode="keyword").hits
    assert [hit.source_prompt.prompt for hit in hits] == [PROMPTS[2]]


def test_prompts_are_found_by_meaning_through_the_clip_text_encoder(imported) -> None:
    model = active_embedding_model()
    query = "lighthouse dawn cliff"
    vectors = embedder.embed_texts(str(settings.SEEDBANK_CLIP_PATH), [query, *PROMPTS])
    expected = sorted(PROMPTS, key=lambda p: -float(vectors[0] @ vectors[1 + PROMPTS.index(p)]))
    hits = prompt_only_search(query=query, model=model, mode="vector", min_score=-1.0).hits
    assert [hit.source_prompt.prompt for hit in hits] == expected
    assert hits[0].vector_score == pytest.approx(
        float(np.dot(vectors[0], vectors[1 + PROMPTS.index(expected[0])])), abs=1e-4
    )


def test_hidden_and_nsfw_rows_follow_the_records_rules(imported) -> None:
    model = active_embedding_model()
    SourcePrompt.objects.filter(prompt=PROMPTS[1]).update(hidden=True)
    SourcePrompt.objects.filter(prompt=PROMPTS[0]).update(nsfw=True)
    assert not prompt_only_search(query="ramen", model=model, mode="keyword").hits
    found = prompt_only_search(query="lighthouse", model=model, mode="keyword", nsfw="exclude")
    assert not found.hits
    found = prompt_only_search(query="lighthouse", model=model, mode="keyword")
    assert len(found.hits) == 1


def test_search_page_and_api_mark_prompt_only_results(client, imported) -> None:
    page = client.get(reverse("search"), {"q": "ramen", "mode": "keyword"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="prompt-only"' in html
    assert PROMPTS[1] in html
    assert "not rendered here" in html

    api = client.get("/api/v1/images", {"q": "ramen", "mode": "keyword"})
    body = api.json()
    assert body["results"] == []
    (only,) = body["prompt_only"]
    assert only["kind"] == "prompt_only"
    assert only["prompt"] == PROMPTS[1]
    assert only["tool"] and only["location"].endswith("prompts.csv line 3")


def test_rendering_a_prompt_makes_a_record_pointing_at_the_row(
    client, user, imported, model_version, sent
) -> None:
    row = SourcePrompt.objects.get(prompt=PROMPTS[0])
    client.force_login(user)
    form = client.get(reverse("generate"), {"prompt_of": row.pk})
    assert form.status_code == 200
    html = form.content.decode()
    assert PROMPTS[0] in html and 'name="prompt_of"' in html

    initial = form.context["form"].initial
    data = {k: v for k, v in initial.items() if v is not None}
    data.update(
        {
            "model_version": model_version.pk,
            "steps": 4,
            "batch_size": 1,
            "prompt_of": row.pk,
        }
    )
    response = client.post(reverse("generate"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    (link,) = PromptRender.objects.all()
    assert link.source == row.source
    assert link.image.prompt == PROMPTS[0]
    assert link.image.seed == 7
    assert image_prompt_source(image=link.image) == row.source
    # The row stays prompt-only: the render is a new record, not its original.
    row.source.refresh_from_db()
    assert row.source.image is None and row.source.state == SourceRecord.State.NEEDS_MODEL

    render_job_run(job_id=link.image.job_id)  # the worker's side, as a render worker runs it
    detail = client.get(reverse("image_detail", args=[link.image.pk])).content.decode()
    assert 'data-testid="rendered-from-prompt"' in detail
    assert row.source.location in detail


def test_switching_the_clip_model_sends_the_prompts_back_to_be_embedded(
    imported, sent, django_capture_on_commit_callbacks
) -> None:
    """manage.py reembed activates a new model: the prompts' vectors came from the old one's
    text encoder, so they wait for the new one (and a drain is sent); re-activating the model
    that is already active changes nothing."""
    from search.models import EmbeddingModel
    from search.services import embedding_model_activate

    current = EmbeddingModel.objects.get(is_active=True)
    other = EmbeddingModel.objects.create(name="other-clip@00000000", path=current.path, dim=512)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        embedding_model_activate(model=other)
    assert not SourcePrompt.objects.exclude(embedding_model="").exists()
    assert not SourcePrompt.objects.filter(embedding__isnull=False).exists()
    assert [name for name, *_ in sent] == ["archive.tasks.embed_source_prompts"]
    assert source_prompts_embed() == len(PROMPTS)
    assert set(SourcePrompt.objects.values_list("embedding_model", flat=True)) == {other.name}

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        embedding_model_activate(model=other)  # already active: nothing is stale
    assert sent == []
    assert set(SourcePrompt.objects.values_list("embedding_model", flat=True)) == {other.name}


def test_importing_again_makes_the_prompt_rows_an_older_import_lacks(
    tmp_path, media_root, sent, django_capture_on_commit_callbacks
) -> None:
    """Rows imported before prompt rows existed (archive 0004) have none: the same file
    imported again makes them, and nothing else (no second source row, no record)."""
    (tmp_path / "prompts.csv").write_text(
        "prompt\n" + "\n".join(f'"{p}"' for p in PROMPTS) + "\n", encoding="utf-8"
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = import_rows(run=import_run_start(sources=[str(tmp_path)], mapping={}),
                            rows=rows([tmp_path]))  # fmt: skip
    assert first.incomplete == len(PROMPTS) and SourcePrompt.objects.count() == len(PROMPTS)
    assert source_prompts_embed() == len(PROMPTS)
    SourcePrompt.objects.filter(prompt__in=PROMPTS[:3]).delete()  # as before archive 0004
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = import_rows(run=import_run_start(sources=[str(tmp_path)], mapping={}),
                            rows=rows([tmp_path]))  # fmt: skip
    assert again.duplicates == len(PROMPTS)
    assert sorted(SourcePrompt.objects.values_list("prompt", flat=True)) == sorted(PROMPTS)
    assert SourceRecord.objects.count() == len(PROMPTS) and not Image.objects.exists()
    assert "archive.tasks.embed_source_prompts" in [name for name, *_ in sent]
    assert source_prompts_embed() == 3  # the three new rows get their vectors
    hits = prompt_only_search(query="ramen", model=active_embedding_model(), mode="keyword")
    assert [hit.source_prompt.prompt for hit in hits.hits] == [PROMPTS[1]]
