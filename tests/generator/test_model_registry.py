"""The model registry: `manage.py model_add` (folders and single files), the demo models,
and the public model page."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from django.utils import timezone
from safetensors.torch import load_file, save_file

from engine.pipeline import render
from engine.tiny_models import build_tiny_sd
from engine.weights import weights_digest
from generator.models import Image, ModelVersion
from tests.engine.support import render_request
from tests.factories import ImageFactory, ModelVersionFactory

WEIGHTS = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
}


# --- a single-file checkpoint, written the way CompVis / A1111 lay one out --------------------
#
# diffusers ships only the original -> diffusers direction, so the tests write the other one:
# the key renames of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py,
# generalised from SD 1.x's fixed block counts to any layers_per_block and block types.

_RESNET_RENAMES = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
]
_VAE_ATTENTION_RENAMES = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def _unet_prefixes(config: dict) -> dict[str, tuple[str, bool]]:
    """diffusers prefix -> (original prefix, is a resnet)."""
    per_block = config["layers_per_block"]
    prefixes = {
        "time_embedding.linear_1.": ("time_embed.0.", False),
        "time_embedding.linear_2.": ("time_embed.2.", False),
        "conv_in.": ("input_blocks.0.0.", False),
        "conv_norm_out.": ("out.0.", False),
        "conv_out.": ("out.2.", False),
        "mid_block.resnets.0.": ("middle_block.0.", True),
        "mid_block.attentions.0.": ("middle_block.1.", False),
        "mid_block.resnets.1.": ("middle_block.2.", True),
    }
    for block in range(len(config["down_block_types"])):
        for layer in range(per_block):
            index = block * (per_block + 1) + layer + 1
            prefixes[f"down_blocks.{block}.resnets.{layer}."] = (f"input_blocks.{index}.0.", True)
            prefixes[f"down_blocks.{block}.attentions.{layer}."] = (
                f"input_blocks.{index}.1.",
                False,
            )
        downsampler = f"input_blocks.{(block + 1) * (per_block + 1)}.0.op."
        prefixes[f"down_blocks.{block}.downsamplers.0.conv."] = (downsampler, False)
    for block, kind in enumerate(config["up_block_types"]):
        for layer in range(per_block + 1):
            index = block * (per_block + 1) + layer
            prefixes[f"up_blocks.{block}.resnets.{layer}."] = (f"output_blocks.{index}.0.", True)
            prefixes[f"up_blocks.{block}.attentions.{layer}."] = (
                f"output_blocks.{index}.1.",
                False,
            )
        position = 2 if "CrossAttn" in kind else 1  # after the attention, if the block has one
        upsampler = f"output_blocks.{block * (per_block + 1) + per_block}.{position}.conv."
        prefixes[f"up_blocks.{block}.upsamplers.0.conv."] = (upsampler, False)
    return prefixes


def _rename(rest: str, renames: list[tuple[str, str]]) -> str:
    for new, old in renames:
        if rest.startswith(new):
            return old + rest[len(new) :]
    return rest


def _unet_key(key: str, prefixes: dict[str, tuple[str, bool]]) -> str:
    for new, (old, resnet) in prefixes.items():
        if key.startswith(new):
            rest = key[len(new) :]
            return old + (_rename(rest, _RESNET_RENAMES) if resnet else rest)
    raise KeyError(key)


def _vae_key(key: str, blocks: int) -> str:
    parts = key.split(".")
    tail = ".".join(parts[5:])
    shortcut = [("conv_shortcut.", "nin_shortcut.")]
    if key.startswith("encoder.down_blocks."):
        block, kind, layer = parts[2], parts[3], parts[4]
        if kind == "resnets":
            return f"encoder.down.{block}.block.{layer}." + _rename(tail, shortcut)
        return f"encoder.down.{block}.downsample." + tail
    if key.startswith("decoder.up_blocks."):
        block, kind, layer = blocks - 1 - int(parts[2]), parts[3], parts[4]
        if kind == "resnets":
            return f"decoder.up.{block}.block.{layer}." + _rename(tail, shortcut)
        return f"decoder.up.{block}.upsample." + tail
    if ".mid_block.resnets." in key:
        rest = _rename(".".join(parts[4:]), shortcut)
        return f"{parts[0]}.mid.block_{int(parts[3]) + 1}.{rest}"
    if ".mid_block.attentions.0." in key:
        return f"{parts[0]}.mid.attn_1." + _rename(".".join(parts[4:]), _VAE_ATTENTION_RENAMES)
    return key.replace("conv_norm_out", "norm_out")


def original_layout(folder: Path, *, unet_from: Path | None = None) -> dict[str, torch.Tensor]:
    """The state dict an original-layout single file of `folder` holds."""
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    prefixes = _unet_prefixes(unet_config)
    state = {
        "model.diffusion_model." + _unet_key(key, prefixes): value
        for key, value in load_file((unet_from or folder) / WEIGHTS["unet"]).items()
    }
    blocks = len(json.loads((folder / "vae" / "config.json").read_text())["up_block_types"])
    for key, value in load_file(folder / WEIGHTS["vae"]).items():
        original = "first_stage_model." + _vae_key(key, blocks)
        if ".mid.attn_1." in original and original.endswith(".weight") and value.ndim == 2:
            value = value.reshape(*value.shape, 1, 1)  # the original uses 1x1 convolutions
        state[original] = value
    for key, value in load_file(folder / WEIGHTS["text_encoder"]).items():
        state["cond_stage_model.transformer.text_model." + key] = value
    return state


def write_single_file(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({key: state[key].contiguous() for key in sorted(state)}, str(path))
    return path


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def single_file(tiny_sd_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("single-file")
    return write_single_file(original_layout(tiny_sd_path), folder / "tiny-sd.safetensors")


@pytest.fixture(scope="session")
def finetune_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("ft") / "tiny-sd-finetune", variant="finetune")


@pytest.fixture
def models_dir(settings, tmp_path: Path) -> Path:
    settings.SEEDBANK_MODELS_DIR = tmp_path / "models"
    return settings.SEEDBANK_MODELS_DIR


def model_add(*arguments: str) -> str:
    out = io.StringIO()
    call_command("model_add", *arguments, stdout=out)
    return out.getvalue()


def render_sha(model_version: ModelVersion | Path) -> str:
    # Compared within this process only; see test_blends.pixel_sha on the `deterministic` fixture.
    path = model_version if isinstance(model_version, Path) else Path(model_version.path)
    request = render_request(
        model_path=str(path),
        prompt="a red fox in fresh snow",
        negative_prompt="",
        seeds=(21,),
        scheduler="PNDM",
        steps=4,
        guidance=7.5,
        width=64,
        height=64,
    )
    return render(request)[0].pixel_sha256


def weights_equal(folder: Path, other: Path) -> bool:
    for relative in WEIGHTS.values():
        mine, theirs = load_file(folder / relative), load_file(other / relative)
        if mine.keys() != theirs.keys():
            return False
        if not all(torch.equal(mine[key], theirs[key]) for key in mine):
            return False
    return True


# --- model_add: folders ---------------------------------------------------------------------


@pytest.mark.django_db
def test_model_add_registers_a_diffusers_folder_that_renders(
    models_dir: Path, tiny_sd_path: Path
) -> None:
    output = model_add(
        str(tiny_sd_path),
        "--name", "local-sd",
        "--revision", "r1",
        "--native-size", "64",
        "--variant", "ema",
        "--license", "creativeml-openrail-m",
        "--default-scheduler", "Euler a",
        "--notes", "a folder",
    )  # fmt: skip
    model_version = ModelVersion.objects.get(name="local-sd", revision="r1")
    assert "Registered local-sd@r1" in output and model_version.weights_digest in output
    assert model_version.source_kind == ModelVersion.SourceKind.DIFFUSERS_FOLDER
    assert model_version.path == str(tiny_sd_path.resolve())  # registered in place
    assert model_version.weights_digest == weights_digest(tiny_sd_path)
    assert (model_version.variant, model_version.license) == ("ema", "creativeml-openrail-m")
    assert (model_version.native_width, model_version.native_height) == (64, 64)
    assert model_version.default_scheduler == "Euler a"
    assert (model_version.notes, model_version.source_sha256) == ("a folder", "")
    assert not model_version.is_default
    assert not models_dir.exists()  # nothing copied or converted
    assert render_sha(model_version) == render_sha(model_version)
    # Adding it again refreshes the record; --make-default moves the default flag.
    model_add(str(tiny_sd_path), "--name", "local-sd", "--revision", "r1", "--make-default")
    model_version.refresh_from_db()
    assert model_version.is_default and model_version.variant == ""
    assert ModelVersion.objects.filter(name="local-sd").count() == 1


# --- model_add: single files ----------------------------------------------------------------


@pytest.mark.django_db
def test_model_add_converts_a_single_file_offline_and_it_renders_like_the_original(
    models_dir: Path, tiny_sd_path: Path, single_file: Path, monkeypatch
) -> None:
    # No hub variable is set: offline must come from the code, not the environment.
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    file_sha = hashlib.sha256(single_file.read_bytes()).hexdigest()
    output = model_add(
        str(single_file), "--name", "from-file", "--config", str(tiny_sd_path),
        "--native-size", "64", "--license", "openrail",
    )  # fmt: skip
    model_version = ModelVersion.objects.get(name="from-file")
    assert "single-file checkpoint, converted" in output
    assert model_version.source_kind == ModelVersion.SourceKind.SINGLE_FILE
    assert model_version.source_sha256 == file_sha
    assert file_sha in model_version.notes and "tiny-sd.safetensors" in model_version.notes
    converted = Path(model_version.path)
    assert converted == models_dir / "from-file-main"
    assert model_version.weights_digest == weights_digest(converted)
    # Every weight came from the file, and the file was the original model's weights.
    assert weights_equal(converted, tiny_sd_path)
    assert render_sha(model_version) == render_sha(tiny_sd_path)
    assert [p.name for p in models_dir.iterdir()] == ["from-file-main"]  # no temp folders

    # The same file again is a refresh, not a second conversion; another file is refused.
    model_add(str(single_file), "--name", "from-file", "--config", str(tiny_sd_path))
    assert ModelVersion.objects.get(name="from-file").pk == model_version.pk
    state = original_layout(tiny_sd_path)
    state["model.diffusion_model.out.2.bias"] = state["model.diffusion_model.out.2.bias"] + 1
    other = write_single_file(state, single_file.parent / "changed.safetensors")
    with pytest.raises(CommandError, match="already registered from other files"):
        model_add(str(other), "--name", "from-file", "--config", str(tiny_sd_path))
    model_version.refresh_from_db()
    assert model_version.source_sha256 == file_sha


@pytest.mark.django_db
@pytest.mark.parametrize("variant", ["ema", "non-ema"])
def test_a_file_with_ema_and_raw_weights_converts_the_chosen_ones(
    models_dir: Path, tiny_sd_path: Path, finetune_path: Path, tmp_path: Path, variant: str
) -> None:
    # Training checkpoints hold the EMA copy under model_ema.<key without dots>; here the EMA
    # UNet is the fine-tune's, the raw one the base model's.
    state = original_layout(tiny_sd_path)
    ema = original_layout(tiny_sd_path, unet_from=finetune_path)
    for key, value in ema.items():
        if key.startswith("model.diffusion_model."):
            state["model_ema." + "".join(key.split(".")[1:])] = value
    full = write_single_file(state, tmp_path / "full.safetensors")
    with pytest.raises(CommandError, match="holds both EMA and non-EMA UNet weights"):
        model_add(str(full), "--name", "full", "--config", str(tiny_sd_path))
    model_add(str(full), "--name", "full", "--config", str(tiny_sd_path), "--variant", variant)
    model_version = ModelVersion.objects.get(name="full")
    assert model_version.variant == variant
    expected = finetune_path if variant == "ema" else tiny_sd_path
    assert weights_equal(Path(model_version.path), expected)


def _refusals(tmp: Path, tiny: Path) -> list[tuple[list[str], str]]:
    (tmp / "empty").mkdir()
    no_unet = shutil.copytree(tiny, tmp / "no-unet")
    shutil.rmtree(no_unet / "unet")
    (tmp / "notes.txt").write_text("not a model")
    (tmp / "model.ckpt").write_bytes(b"\x80\x04pickle")
    (tmp / "garbage.safetensors").write_bytes(b"\x00" * 64)
    save_file({"weight": torch.zeros(2)}, str(tmp / "lora.safetensors"))
    other_arch = shutil.copytree(tiny, tmp / "other-arch")
    config = json.loads((other_arch / "unet" / "config.json").read_text())
    config["layers_per_block"] = 1
    (other_arch / "unet" / "config.json").write_text(json.dumps(config))
    single = str(tmp / "tiny.safetensors")
    return [
        ([str(tmp / "absent"), "--name", "x"], "No such file or folder"),
        ([str(tmp / "empty"), "--name", "x"], "is not a diffusers folder"),
        ([str(no_unet), "--name", "x"], "not a Stable Diffusion pipeline folder: no unet"),
        ([str(tmp / "notes.txt"), "--name", "x"], "is not a .safetensors checkpoint"),
        ([str(tmp / "model.ckpt"), "--name", "x"], "pickled checkpoint"),
        ([str(tmp / "garbage.safetensors"), "--name", "x"], "not a readable safetensors file"),
        ([str(tmp / "lora.safetensors"), "--name", "x"], "no UNet"),
        ([single, "--name", "x"], "needs --config FOLDER"),
        ([single, "--name", "x", "--config", str(tmp / "empty")], "is not a diffusers folder"),
        ([single, "--name", "x", "--config", str(other_arch)], "other-arch"),
        ([str(tiny), "--name", "x", "--config", str(tiny)], "only for single-file"),
        ([str(tiny), "--name", "x", "--default-scheduler", "Bogus"], "Unknown scheduler"),
        ([str(tiny), "--name", "x", "--native-size", "100"], "multiple of 8"),
        ([str(tiny), "--name", "  "], "non-empty --name"),
    ]


@pytest.mark.django_db
def test_model_add_refuses_bad_input_with_a_clear_message(
    models_dir: Path, tiny_sd_path: Path, single_file: Path, tmp_path: Path
) -> None:
    shutil.copy(single_file, tmp_path / "tiny.safetensors")
    for arguments, message in _refusals(tmp_path, tiny_sd_path):
        with pytest.raises(CommandError) as caught:
            model_add(*arguments)
        assert message in str(caught.value), (arguments, str(caught.value))
    assert not ModelVersion.objects.exists()
    assert not models_dir.exists() or not any(models_dir.iterdir())


@pytest.mark.django_db
def test_a_registered_name_and_revision_is_never_repointed_at_other_files(
    models_dir: Path, tiny_sd_path: Path, finetune_path: Path
) -> None:
    model_add(str(tiny_sd_path), "--name", "dup", "--revision", "v1")
    before = ModelVersion.objects.get(name="dup")
    with pytest.raises(CommandError, match="already registered with other files"):
        model_add(str(finetune_path), "--name", "dup", "--revision", "v1", "--make-default")
    after = ModelVersion.objects.get(name="dup")
    assert (after.path, after.weights_digest, after.is_default) == (
        before.path,
        before.weights_digest,
        before.is_default,
    )
    model_add(str(finetune_path), "--name", "dup", "--revision", "v2")  # a new revision is fine
    assert ModelVersion.objects.filter(name="dup").count() == 2


# --- the demo models ------------------------------------------------------------------------


@pytest.mark.django_db
def test_build_tiny_models_registers_base_finetune_and_blend(models_dir: Path) -> None:
    call_command("build_tiny_models", stdout=io.StringIO())
    call_command("build_tiny_models", stdout=io.StringIO())  # idempotent
    base = ModelVersion.objects.get(name="tiny-sd")
    finetune = ModelVersion.objects.get(name="tiny-sd-finetune")
    blend = ModelVersion.objects.get(name="tiny-sd-blend-0.5")
    assert ModelVersion.objects.count() == 3
    assert base.is_default and not finetune.is_default and not blend.is_default
    assert len({base.weights_digest, finetune.weights_digest, blend.weights_digest}) == 3
    assert (blend.blend_a, blend.blend_b, blend.blend_alpha) == (finetune, base, 0.5)
    assert blend.source_kind == ModelVersion.SourceKind.BLEND
    assert (blend.native_width, finetune.native_width) == (64, 64)


@pytest.mark.django_db
def test_demo_models_registers_the_shipped_scene_models_and_seed_demo_uses_them(
    models_dir: Path, media_root: Path
) -> None:
    from engine.training.shipped import GUIDANCE
    from gallery.demo import DEMO_MODEL_PROMPT_INDEXES, DEMO_PROMPTS, DEMO_REMIXES
    from gallery.management.commands.seed_demo import _remixes
    from generator.management.commands.demo_models import REVISION
    from generator.models import RenderJob
    from generator.services.rendering import render_job_run

    # A revision registered before the models were retrained: its folder now has other bytes.
    older = ModelVersion.objects.create(
        name="scenes-sd", revision="v0", path="/nowhere", weights_digest="0" * 64, is_default=True
    )
    call_command("demo_models", stdout=io.StringIO())
    call_command("demo_models", stdout=io.StringIO())  # idempotent
    base = ModelVersion.objects.get(name="scenes-sd", revision=REVISION)
    outline = ModelVersion.objects.get(name="scenes-sd-outline")
    blend = ModelVersion.objects.get(name="scenes-sd-blend-0.5")
    assert base.is_default and base.weights_digest == weights_digest(Path(base.path))
    assert (blend.blend_a, blend.blend_b, blend.blend_alpha) == (outline, base, 0.5)
    older.refresh_from_db()
    assert older.archived_at is not None and not older.is_default
    assert base.archived_at is None and f"guidance {GUIDANCE:g}" in base.notes

    call_command("seed_demo", stdout=io.StringIO())
    images = Image.objects.all()
    others = images.exclude(model_version=base)
    assert images.filter(model_version=base).count() == len(DEMO_PROMPTS) == 32
    assert set(images.values_list("guidance", flat=True)) == {GUIDANCE}
    assert others.count() == 2 * len(DEMO_MODEL_PROMPT_INDEXES)
    for image in others:  # the same recipe but for the model
        twin = images.get(model_version=base, prompt=image.prompt)
        assert (twin.seed, twin.scheduler, twin.steps) == (image.seed, image.scheduler, image.steps)
    assert any("背景" in prompt for prompt in DEMO_PROMPTS)  # Chinese prompts too
    assert len(set(images.values_list("scheduler", flat=True))) >= 4

    # Remixes need rendered parents (seed_demo --wait in `make run`): render them here.
    jobs = list(RenderJob.objects.order_by("pk")[: len(DEMO_PROMPTS)])
    for index, _, _ in DEMO_REMIXES:
        render_job_run(job_id=jobs[index].pk)
    remixes = _remixes(jobs[0].owner, jobs)
    assert all(remix is not None for remix in remixes)
    for (index, word, replacement), remix in zip(DEMO_REMIXES, remixes, strict=True):
        child = remix.images.get()
        parent = jobs[index].images.get()
        assert child.parent == parent
        assert child.prompt == parent.prompt.replace(word, replacement) != parent.prompt
        assert (child.seed, child.scheduler) == (parent.seed, parent.scheduler)
    assert len(DEMO_PROMPTS) + 2 * len(DEMO_MODEL_PROMPT_INDEXES) + len(DEMO_REMIXES) >= 48

    # The resource chains: each generation rendered before the next is remixed from it.
    from gallery.demo import DEMO_RECIPE_CHAINS
    from gallery.management.commands.seed_demo import Command as SeedDemo
    from generator.models import Resource

    assert set(Resource.objects.values_list("name", flat=True)) == {
        "scenes-outline-lora",
        "scenes-vae-v1",
        "scenes-vae-ft",
        "sbk-diamond",
    }
    for index, _ in DEMO_RECIPE_CHAINS:
        if not jobs[index].images.get().image_file:
            render_job_run(job_id=jobs[index].pk)
    command = SeedDemo(stdout=io.StringIO())
    command._wait = lambda ids, timeout: [render_job_run(job_id=pk) for pk in ids]
    command._chains(jobs[0].owner, jobs, wait=True, timeout=60)
    base_circle = jobs[0].images.get()
    weights, record = [], base_circle
    while (child := record.children.exclude(loras=[]).first()) is not None:
        weights.append(child.loras[0]["weight"])
        assert child.status == Image.Status.READY, child.job.error
        if child.loras[0]["weight"] == 0.0:  # LoRA at 0 renders its parent's very pixels
            assert child.pixel_sha256 == base_circle.pixel_sha256
        else:
            assert child.pixel_sha256 != record.pixel_sha256
        record = child
    assert weights == [0.0, 0.5, 1.0]
    diamonds = Image.objects.filter(prompt__contains="sbk-diamond")
    assert [image.embeddings[0]["token"] for image in diamonds] == ["sbk-diamond"]
    assert diamonds.get().pixel_sha256 != diamonds.get().parent.pixel_sha256
    for field in ("vae", "hires"):
        changed = Image.objects.exclude(**{f"{field}__isnull": True}).exclude(parent=None)
        assert changed.exists(), field
        for child in changed:
            assert child.status == Image.Status.READY, child.job.error
            assert child.pixel_sha256 != child.parent.pixel_sha256, field


# --- the model page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_page_lists_facts_blend_and_public_images_escaped(
    client, media_root: Path, django_assert_max_num_queries
) -> None:
    a = ModelVersionFactory(name="ingredient-a")
    b = ModelVersionFactory(name="ingredient-b")
    blend = ModelVersionFactory(
        name="<script>alert(1)</script>",
        revision="r7",
        variant="ema",
        license="creativeml-openrail-m",
        source_kind=ModelVersion.SourceKind.BLEND,
        blend_a=a,
        blend_b=b,
        blend_alpha=0.3,
        archived_at=timezone.now(),
    )
    shown = [ImageFactory(model_version=blend, prompt=f"shown {n} <b>") for n in range(3)]
    ImageFactory(model_version=blend, prompt="hidden one", hidden=True)
    ImageFactory(model_version=blend, prompt="still pending", status=Image.Status.PENDING)
    ImageFactory(model_version=a, prompt="made with a")
    with django_assert_max_num_queries(3):
        response = client.get(f"/models/{blend.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert blend.weights_digest in html
    assert "EMA weights" in html and "creativeml-openrail-m" in html
    assert "weighted blend of two models" in html
    assert f'href="/models/{a.pk}/"' in html and f'href="/models/{b.pk}/"' in html
    assert "0.3 ×" in html and "0.7 ×" in html
    assert 'data-testid="model-archived"' in html
    # Public images only, newest first; prompts escaped.
    positions = [html.index(f'href="/images/{image.pk}/"') for image in reversed(shown)]
    assert positions == sorted(positions)
    assert "shown 0 &lt;b&gt;" in html
    for absent in ("hidden one", "still pending", "made with a"):
        assert absent not in html


@pytest.mark.django_db
def test_model_page_of_a_plain_model_and_of_none(client) -> None:
    model_version = ModelVersionFactory(name="plain")
    html = client.get(f"/models/{model_version.pk}/").content.decode()
    assert "plain" in html and "No public images yet" in html
    assert 'data-testid="model-blend"' not in html and "model-archived" not in html
    assert client.get("/models/999999/").status_code == 404
