"""Importing recipes into the archive (archive.services), real Postgres and the tiny model."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from PIL import Image as PILImage
from PIL import PngImagePlugin

from archive.models import ImportProblem, ImportRun, SourceRecord
from archive.selectors import source_verification
from archive.services.imports import import_rows, import_run_start
from archive.services.verify import imports_verify
from engine.imports.discover import rows
from engine.infotext import read_png_chunks
from engine.recipe import A1111_WEIGHTING, Hires, LoraUse, Recipe, ResourceUse
from generator.models import Image, RenderJob, Reproduction
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_job_run, reproduction_run
from search.models import PendingEmbedding
from tests.engine.imports.test_image_files import A1111_TEXT, png

pytestmark = pytest.mark.django_db


def run_import(paths, **options):
    run = import_run_start(sources=[str(p) for p in paths], mapping={})
    return import_rows(run=run, rows=rows(list(paths)), **options)


def test_a_folder_of_sources_becomes_records_provenance_and_a_report(
    tmp_path, model_version, media_root, sent, django_capture_on_commit_callbacks
):
    short_hash = model_version.weights_digest[:10]
    ours = A1111_TEXT.replace("6ce0161689", short_hash).replace("v1-5-pruned-emaonly", "x")
    (tmp_path / "ours.png").write_bytes(png({"parameters": ours}))
    (tmp_path / "theirs.png").write_bytes(png({"parameters": A1111_TEXT}, colour="blue"))
    (tmp_path / "blank.png").write_bytes(png({}))
    (tmp_path / "prompts.csv").write_text(
        "prompt,seed,steps,cfg,width,height,sampler,model\n"
        "a koi pond,3,4,7,64,64,DDIM,tiny-sd\n"  # no picture, model here: rendered
        "a heron,4,20,7,512,512,Euler,sd-xl\n"  # no picture, model elsewhere
        "a moth,5,20,7,512,512,dpmpp_3m_sde,tiny-sd\n"  # sampler not in the catalogue
        ",6,20,7,512,512,Euler,tiny-sd\n",  # no prompt
        encoding="utf-8",
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path])
    assert run.status == ImportRun.Status.DONE
    counts = (run.read, run.imported, run.queued, run.needs_model, run.incomplete, run.rejected)
    assert counts == (7, 2, 1, 1, 1, 2)

    record = SourceRecord.objects.get(location__endswith="ours.png")
    image = record.image
    assert (record.state, record.tool, record.model_hash) == ("imported", "a1111", short_hash)
    assert image.model_version == model_version  # matched by A1111's short hash
    assert image.model_digest == model_version.weights_digest
    assert (image.status, image.scheduler, image.seed, image.width) == (
        "ready", "DPM++ 2M Karras", 1234, 512)  # fmt: skip
    assert image.pixel_sha256 == record.source_key.removeprefix("image:")
    assert image.search_vector is not None
    assert PendingEmbedding.objects.filter(image=image).exists()  # embedded like a render
    assert source_verification(record=record) == "unverified"

    theirs = SourceRecord.objects.get(location__endswith="theirs.png")
    assert theirs.image.model_version is None  # its model is not here: shown, not renderable
    assert theirs.image.model_name == "v1-5-pruned-emaonly"

    queued = SourceRecord.objects.get(state="queued")
    assert queued.image.status == "pending" and queued.image.model_version == model_version
    assert [name for name, _ in sent].count("generator.tasks.run_render_job") == 1
    needs = SourceRecord.objects.get(state="needs-model")
    assert (needs.image, needs.reason) == (None, "sd-xl")
    incomplete = SourceRecord.objects.get(state="incomplete")
    assert "dpmpp_3m_sde" in incomplete.reason and incomplete.image is None
    problems = {p.location.split("/")[-1]: p.reason for p in ImportProblem.objects.all()}
    assert problems["blank.png"].startswith("no recipe found")
    assert problems["prompts.csv line 5"] == "no prompt"


def test_importing_again_adds_nothing_and_reports_what_changed(tmp_path, model_version, sent):
    table = tmp_path / "prompts.jsonl"
    table.write_text(json.dumps({"id": 1, "prompt": "a lamp", "seed": 1}) + "\n"
                     + json.dumps({"id": 2, "prompt": "a kite", "seed": 2}) + "\n")  # fmt: skip
    first = run_import([table])
    assert first.needs_model + first.incomplete == 2
    table.write_text(json.dumps({"id": 1, "prompt": "a lamp", "seed": 1}) + "\n"
                     + json.dumps({"id": 2, "prompt": "a red kite", "seed": 2}) + "\n")  # fmt: skip
    again = run_import([table])
    assert (again.duplicates, again.changed, again.imported + again.incomplete) == (2, 1, 0)
    assert SourceRecord.objects.count() == 2
    (changed,) = ImportProblem.objects.filter(run=again)
    assert changed.kind == "changed" and changed.location.endswith("line 2")


def test_a_seedbank_render_stripped_to_its_a1111_text_verifies_bit_identical(
    tmp_path, model_version, media_root, sent, django_capture_on_commit_callbacks
):
    recipe = Recipe(model_version_id=model_version.pk, prompt="a lighthouse at dusk", seed=7,
                    steps=5, scheduler="Euler a", guidance=6.0)  # fmt: skip
    job = render_job_create(owner=None, recipe=recipe)
    with django_capture_on_commit_callbacks(execute=True):
        render_job_run(job_id=job.pk)
    original = job.images.get()
    data = (media_root / original.image_file.name).read_bytes()
    chunks = read_png_chunks(data)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", chunks["parameters"])  # the A1111 text alone
    stripped = io.BytesIO()
    PILImage.open(io.BytesIO(data)).save(stripped, format="PNG", pnginfo=info)
    (tmp_path / "from-a1111.png").write_bytes(stripped.getvalue())
    original.delete()  # as if the PNG came from somewhere else

    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path / "from-a1111.png"])
    assert run.imported == 1
    record = SourceRecord.objects.get()
    assert record.tool == "a1111" and record.image.model_version == model_version
    (check,) = imports_verify()
    assert imports_verify() == []  # queued once
    reproduction_run(reproduction_id=check.pk)
    check.refresh_from_db()
    assert check.verdict == Reproduction.Verdict.BIT_IDENTICAL
    assert source_verification(record=record) == "bit-identical"


def test_a_render_with_every_resource_reimports_from_its_a1111_text_and_verifies(
    tmp_path,
    model_version,
    media_root,
    sent,
    django_capture_on_commit_callbacks,
    lora_resource,
    vae_resource,
    embedding_resource,
):
    """LoRA, embedding, VAE, clip skip, A1111 emphasis and hires: the A1111 text alone names
    each file by its short hash, the import finds them, and the rerun is bit-identical."""
    recipe = Recipe(
        model_version_id=model_version.pk,
        prompt="a (lighthouse:1.3) sbk-thing at dusk",
        seed=7,
        steps=5,
        scheduler="Euler a",
        guidance=6.0,
        loras=(LoraUse(resource=lora_resource.sha256, weight=0.7, name=str(lora_resource)),),
        vae=ResourceUse(resource=vae_resource.sha256, name=str(vae_resource)),
        clip_skip=2,
        prompt_weighting=A1111_WEIGHTING,
        hires=Hires(scale=1.5, upscaler="Latent", steps=3, denoise=0.5),
    )
    job = render_job_create(owner=None, recipe=recipe)
    with django_capture_on_commit_callbacks(execute=True):
        render_job_run(job_id=job.pk)
    original = job.images.get()
    assert original.embeddings == [
        {"token": "sbk-thing", "resource": embedding_resource.sha256, "name": "sbk-thing@main"}
    ]
    data = (media_root / original.image_file.name).read_bytes()
    parameters = read_png_chunks(data)["parameters"]
    assert f'Lora hashes: "tiny-lora: {lora_resource.addnet_sha256[:12]}"' in parameters
    assert f'TI hashes: "sbk-thing: {embedding_resource.sha256[:10]}"' in parameters
    assert f"VAE hash: {vae_resource.sha256[:10]}" in parameters
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)  # the A1111 text alone
    stripped = io.BytesIO()
    PILImage.open(io.BytesIO(data)).save(stripped, format="PNG", pnginfo=info)
    (tmp_path / "from-a1111.png").write_bytes(stripped.getvalue())
    original.delete()

    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([tmp_path / "from-a1111.png"])
    assert (run.imported, run.needs_resource) == (1, 0)
    imported = SourceRecord.objects.get().image
    assert imported.recipe().pixel_key() == recipe.pixel_key() or (
        # names are for people; the files, weights and settings decide
        imported.loras[0]["resource"] == lora_resource.sha256
    )
    (check,) = imports_verify()
    reproduction_run(reproduction_id=check.pk)
    check.refresh_from_db()
    assert check.verdict == Reproduction.Verdict.BIT_IDENTICAL


def test_import_command_prints_the_report(tmp_path, model_version, sent, capsys):
    (tmp_path / "bad.csv").write_text("prompt,seed\n,1\nok,x\n", encoding="utf-8")
    call_command("import", str(tmp_path / "bad.csv"), "--map", "seed=seed")
    out = capsys.readouterr().out
    assert "read 2" in out and "rejected 2" in out
    assert "bad.csv line 2: no prompt" in out
    assert "Seed must be a whole number, not 'x'" in out


def test_import_command_refuses_a_bad_mapping(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Unknown field 'colour'"):
        call_command("import", str(tmp_path), "--map", "colour=c")
    assert not RenderJob.objects.exists() and not Image.objects.exists()


def test_an_interrupted_import_resumes_by_running_it_again(tmp_path, model_version):
    table = tmp_path / "big.jsonl"
    table.write_text("".join(json.dumps({"id": n, "prompt": f"p{n}", "seed": n}) + "\n"
                             for n in range(1200)))  # fmt: skip

    def interrupted():
        for number, row in enumerate(rows([table])):
            if number == 700:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the second batch
            yield row

    run = import_run_start(sources=[str(table)], mapping={})
    with pytest.raises(KeyboardInterrupt):
        import_rows(run=run, rows=interrupted())
    run.refresh_from_db()
    assert (run.status, run.read) == (ImportRun.Status.STOPPED, 500)  # the first batch stays
    assert SourceRecord.objects.count() == 500
    again = run_import([table])
    assert (again.duplicates, again.incomplete, again.status) == (500, 700, "done")
    assert SourceRecord.objects.count() == 1200


def test_a_run_held_by_a_live_worker_is_left_alone_and_orphans_are_resumed(
    tmp_path, settings, staff_user, sent
):
    import psycopg
    from django.db import connection

    from archive.services.imports import (
        _LOCK_SPACE,
        IMPORT_TASK,
        import_run_execute,
        imports_resume,
        upload_folder,
    )
    from config import embedded

    settings.SEEDBANK_IMPORTS_DIR = tmp_path
    run = import_run_start(sources=["rows.csv"], mapping={}, user=staff_user)
    upload_folder(run.pk).mkdir()
    (upload_folder(run.pk) / "0000-rows.csv").write_text("prompt,seed\nan owl,1\n")
    # Another worker's own session (not one from Django's pool, which outlives a close).
    worker = psycopg.connect(embedded.database_url(connection.settings_dict), autocommit=True)
    try:
        worker.execute("SELECT pg_advisory_lock(%s, %s)", [_LOCK_SPACE, run.pk])
        import_run_execute(run_id=run.pk)  # held: nothing happens
        run.refresh_from_db()
        assert (run.status, run.read) == ("running", 0)
    finally:
        worker.close()  # as when a worker is killed: its session, and the lock, end
    assert imports_resume() == 1 and sent == [(IMPORT_TASK, [run.pk])]
    import_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.read, run.incomplete) == ("done", 1, 1)
    assert imports_resume() == 0


def _sha(word: str) -> str:
    import hashlib

    return hashlib.sha256(word.encode()).hexdigest()


def _resource(tmp_path, kind: str, name: str, **fields):
    from generator.models import Resource

    path = tmp_path / f"{name}-{fields.get('revision', 'main')}.safetensors"
    path.write_bytes(b"not read by an import")  # resolution goes by the registered digests
    return Resource.objects.create(kind=kind, name=name, path=str(path),
                                   sha256=_sha(f"{name} {fields}"), **fields)  # fmt: skip


def test_resources_are_found_by_hash_and_rows_without_them_are_never_rendered(
    tmp_path, model_version, media_root, sent, django_capture_on_commit_callbacks
):
    outline = _resource(tmp_path, "lora", "scenes-outline-lora", addnet_sha256=_sha("tensors"),
                        air="urn:air:sd1:lora:civitai:5@6")  # fmt: skip
    vae = _resource(tmp_path, "vae", "scenes-vae")
    model = f"Model hash: {model_version.weights_digest[:10]}"
    base = "a lighthouse{tags}\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x64, "
    found = base.format(tags=" <lora:my-own-name:0.8>") + (
        f"{model}, VAE hash: {vae.sha256[:10]}, VAE: whatever, Clip skip: 2, "
        "Hires upscale: 1.5, Hires upscaler: Latent, Denoising strength: 0.5, "
        f'Lora hashes: "my-own-name: {outline.addnet_sha256[:12]}"'
    )
    unknown = base.format(tags=" <lora:add_detail:0.6>") + (
        f'{model}, Lora hashes: "add_detail: 7c6bad76eb54", VAE hash: {vae.sha256[:10]}'
    )
    embedding = base.format(tags="") + f'{model}, TI hashes: "easynegative: c74b4e810b03"'
    entries = json.dumps([{"type": "lora", "weight": 0.5, "modelVersionId": 6}])
    civitai = base.format(tags="") + f"{model}, Civitai resources: {json.dumps(entries)}"
    for name, text, colour in (
        ("found", found, "red"),
        ("unknown", unknown, "blue"),
        ("embedding", embedding, "green"),
        ("civitai", civitai, "white"),
    ):
        (tmp_path / f"{name}.png").write_bytes(png({"parameters": text}, colour=colour))
    lora_row = {"id": 1, "prompt": "a heron", "seed": 4, "steps": 4, "guidance": 7, "width": 64,
                "height": 64, "scheduler": "Euler", "model": "tiny-sd",
                "loras": [{"resource": outline.sha256, "weight": 0.5, "name": "x"}]}  # fmt: skip
    ghost_row = {**lora_row, "id": 2, "loras": [{"resource": "ab" * 32, "weight": 1, "name": "g"}]}
    (tmp_path / "rows.jsonl").write_text(json.dumps(lora_row) + "\n" + json.dumps(ghost_row))

    with django_capture_on_commit_callbacks(execute=True):
        run = run_import([*sorted(tmp_path.glob("*.png")), tmp_path / "rows.jsonl"])
    counts = (run.read, run.imported, run.queued, run.needs_resource, run.incomplete)
    assert counts == (6, 2, 1, 3, 0)

    record = SourceRecord.objects.get(location="found.png")
    image = record.image
    assert (record.state, image.model_version) == ("imported", model_version)
    # By A1111's 12-hex addnet hash, whatever the tag called it; the VAE by AutoV2.
    assert [(lora["resource"], lora["weight"]) for lora in image.loras] == [(outline.sha256, 0.8)]
    assert image.vae["resource"] == vae.sha256
    assert (image.clip_skip, image.hires["scale"], image.hires["denoise"]) == (2, 1.5, 0.5)
    assert image.prompt == "a lighthouse"  # the tag is a LoRA, not words
    civitai_image = SourceRecord.objects.get(location="civitai.png").image
    assert civitai_image.loras[0]["resource"] == outline.sha256  # by its AIR's version

    needs = dict(SourceRecord.objects.filter(state="needs-resource")
                 .values_list("location", "reason"))  # fmt: skip
    assert needs["unknown.png"] == "needs resource lora add_detail 7c6bad76eb54"
    assert needs["embedding.png"].startswith("needs resource embedding easynegative c74b4e810b03")
    assert needs["rows.jsonl line 2"] == f"needs resource lora g {'ab' * 32}"
    # Kept, never rendered nor shown: no record, one render queued (the row whose file is here).
    assert not SourceRecord.objects.filter(state="needs-resource", image__isnull=False).exists()
    assert [name for name, _ in sent].count("generator.tasks.run_render_job") == 1
    queued = SourceRecord.objects.get(state="queued").image
    assert [(lora["resource"], lora["weight"]) for lora in queued.loras] == [(outline.sha256, 0.5)]

    # The missing LoRA is registered; importing the same files again brings that row in and
    # leaves the rest as they were.
    detail = _resource(tmp_path, "lora", "add_detail", addnet_sha256="7c6bad76eb54" + "0" * 52)
    with django_capture_on_commit_callbacks(execute=True):
        again = run_import([*sorted(tmp_path.glob("*.png")), tmp_path / "rows.jsonl"])
    assert (again.imported, again.needs_resource, again.duplicates) == (1, 2, 3)
    record = SourceRecord.objects.get(location="unknown.png")
    assert record.state == "imported"
    assert record.image.loras[0]["resource"] == detail.sha256


def test_a_name_alone_finds_a_resource_only_when_one_file_has_it(tmp_path, model_version):
    from archive.services.imports import _resource_sha256
    from engine.imports.source import SourceResource

    first = _resource(tmp_path, "lora", "outline")
    by_name = SourceResource(kind="lora", name="outline")
    assert _resource_sha256(by_name) == first.sha256
    assert _resource_sha256(SourceResource(kind="vae", name="outline")) is None  # other kind
    # A hash that matches nothing is another file, whatever has the same name.
    assert _resource_sha256(SourceResource(kind="lora", name="outline", hash="0" * 10)) is None
    _resource(tmp_path, "lora", "outline", revision="v2")
    assert _resource_sha256(by_name) is None  # two revisions: which one made the picture?
    assert _resource_sha256(SourceResource(kind="lora", name="outline@main")) == first.sha256
