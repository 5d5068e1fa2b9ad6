"""Blends: alpha * A + (1 - alpha) * B, deterministic to the byte, exact at the endpoints.

The first half is Django-free (engine.blends on the tiny base and fine-tune folders); the
second drives `manage.py model_blend` and `blend_rematerialise` against the real database.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from safetensors.torch import load_file, save_file

from engine.blends import materialise_blend
from engine.pipeline import render
from engine.tiny_models import build_tiny_sd
from engine.weights import weights_digest
from tests.engine.support import render_request

REPO_ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
}


@pytest.fixture(scope="session")
def finetune_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("ft") / "tiny-sd-finetune", variant="finetune")


@pytest.fixture(scope="session")
def half_blend(
    sd_model_dir: Path, finetune_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("blends") / "half"
    return materialise_blend(finetune_dir, sd_model_dir, 0.5, out)


def tensors(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(folder / relative) for name, relative in WEIGHTS.items()}


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def pixel_sha(model_path: Path | str) -> str:
    # Compared only within this process (same thread count), so the session-wide
    # `deterministic` fixture is left alone: instantiating it here, earlier than test_pipeline
    # does, would let later Django renders reset the thread count that test_pipeline checks.
    request = render_request(
        model_path=str(model_path),
        prompt="a lighthouse at dusk, oil painting",
        negative_prompt="",
        seeds=(7,),
        scheduler="PNDM",
        steps=4,
        guidance=7.5,
        width=64,
        height=64,
    )
    return render(request)[0].pixel_sha256


def copy_with(source: Path, target: Path, component: str, change) -> Path:
    """A copy of `source` whose `component` weights went through `change(state) -> state`."""
    shutil.copytree(source, target)
    file = target / WEIGHTS[component]
    save_file(change(load_file(file)), str(file), metadata={"format": "pt"})
    return target


# --- engine.blends, Django-free ----------------------------------------------------------


def test_blend_is_byte_identical_across_materialisations(
    sd_model_dir: Path, finetune_dir: Path, half_blend: Path, tmp_path: Path
) -> None:
    again = materialise_blend(finetune_dir, sd_model_dir, 0.5, tmp_path / "again")
    assert tree_bytes(again) == tree_bytes(half_blend)
    assert weights_digest(again) == weights_digest(half_blend)


def test_blend_is_byte_identical_in_another_process(
    sd_model_dir: Path, finetune_dir: Path, half_blend: Path, tmp_path: Path
) -> None:
    # safetensors writes a metadata map with several keys in a per-process order, so bytes
    # that match in one process can differ in the next; a fresh interpreter must agree.
    out = tmp_path / "other-process"
    script = (
        "import sys; from pathlib import Path; from engine.blends import materialise_blend; "
        "materialise_blend(*map(Path, sys.argv[1:3]), 0.5, Path(sys.argv[3]))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(finetune_dir), str(sd_model_dir), str(out)],
        cwd=REPO_ROOT,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "4242"},
    )
    assert tree_bytes(out) == tree_bytes(half_blend)


def test_blend_is_the_weighted_sum_in_float32(
    sd_model_dir: Path, finetune_dir: Path, half_blend: Path
) -> None:
    a, b, blended = tensors(finetune_dir), tensors(sd_model_dir), tensors(half_blend)
    for component in WEIGHTS:
        assert sorted(blended[component]) == sorted(b[component])
        for key, value in blended[component].items():
            expected = a[component][key].float() * 0.5 + b[component][key].float() * 0.5
            assert torch.equal(value, expected.to(value.dtype)), (component, key)
    # The fine-tune only moved the UNet: that is where the blend differs from both.
    unet_key = "conv_out.weight"
    assert not torch.equal(blended["unet"][unet_key], a["unet"][unet_key])
    assert not torch.equal(blended["unet"][unet_key], b["unet"][unet_key])


def test_configs_tokenizer_and_scheduler_come_from_b(sd_model_dir: Path, half_blend: Path) -> None:
    blended, b = tree_bytes(half_blend), tree_bytes(sd_model_dir)
    assert set(blended) == set(b)
    for name, content in b.items():
        if not name.endswith(".safetensors"):
            assert blended[name] == content, name


def test_alpha_zero_is_b_and_alpha_one_is_a_exactly(
    sd_model_dir: Path, finetune_dir: Path, tmp_path: Path
) -> None:
    only_b = materialise_blend(finetune_dir, sd_model_dir, 0.0, tmp_path / "zero")
    only_a = materialise_blend(finetune_dir, sd_model_dir, 1.0, tmp_path / "one")
    for blended, source in ((only_b, sd_model_dir), (only_a, finetune_dir)):
        got, want = tensors(blended), tensors(source)
        for component in WEIGHTS:
            assert got[component].keys() == want[component].keys()
            for key in want[component]:
                assert torch.equal(got[component][key], want[component][key]), (component, key)
    # The same bytes as save_pretrained wrote, so even the digest is B's (A's configs are
    # byte-identical to B's here, so alpha 1 gives A's digest too).
    assert weights_digest(only_b) == weights_digest(sd_model_dir)
    assert weights_digest(only_a) == weights_digest(finetune_dir)
    assert pixel_sha(only_b) == pixel_sha(sd_model_dir)
    assert pixel_sha(only_a) == pixel_sha(finetune_dir)


def test_a_blend_renders_reproducibly_and_differently(
    sd_model_dir: Path, finetune_dir: Path, half_blend: Path
) -> None:
    first, second = pixel_sha(half_blend), pixel_sha(half_blend)
    assert first == second
    assert first not in {pixel_sha(sd_model_dir), pixel_sha(finetune_dir)}


def _drop_first(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state.items() if key != sorted(state)[0]}


def _reshape_conv_out(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**state, "conv_out.bias": torch.zeros(8)}


def _int_conv_out_bias(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**state, "conv_out.bias": state["conv_out.bias"].to(torch.int64)}


@pytest.mark.parametrize(
    ("component", "change", "message"),
    [
        ("unet", _drop_first, "'conv_in.bias' only in B"),
        ("unet", _reshape_conv_out, "'conv_out.bias' has shape [8] in A, [4] in B"),
        ("unet", _int_conv_out_bias, "'conv_out.bias' is I64 in A, F32 in B"),
        ("vae", _drop_first, "vae/diffusion_pytorch_model.safetensors: different tensors"),
    ],
)
def test_mismatched_architectures_are_refused_naming_the_first_difference(
    sd_model_dir: Path, tmp_path: Path, component: str, change, message: str
) -> None:
    other = copy_with(sd_model_dir, tmp_path / "other", component, change)
    with pytest.raises(ValueError) as caught:
        materialise_blend(other, sd_model_dir, 0.5, tmp_path / "out")
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["other"]  # no temp folder left behind


def test_a_failure_while_writing_leaves_no_folder_behind(
    sd_model_dir: Path, tmp_path: Path
) -> None:
    # Integer tensors are indices, not weights: unequal ones are refused mid-write.
    def as_int(fill: int):
        return lambda state: {**state, "conv_out.bias": torch.full((4,), fill)}

    a = copy_with(sd_model_dir, tmp_path / "a", "unet", as_int(1))
    b = copy_with(sd_model_dir, tmp_path / "b", "unet", as_int(2))
    with pytest.raises(ValueError, match=r"non-float tensor 'conv_out\.bias' differs"):
        materialise_blend(a, b, 0.5, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_configs_that_disagree_are_refused(sd_model_dir: Path, tmp_path: Path) -> None:
    # Same tensors, different meaning: A's weights would be read through B's config.
    other = shutil.copytree(sd_model_dir, tmp_path / "other")
    config_file = other / "unet" / "config.json"
    config = json.loads(config_file.read_text())
    config["attention_head_dim"] = 4
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="unet config differs at 'attention_head_dim'"):
        materialise_blend(other, sd_model_dir, 0.5, tmp_path / "out")


def test_bad_alpha_missing_component_and_existing_output_are_refused(
    sd_model_dir: Path, finetune_dir: Path, tmp_path: Path
) -> None:
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="alpha must be a number from 0 to 1"):
            materialise_blend(finetune_dir, sd_model_dir, alpha, tmp_path / "out")
    no_vae = shutil.copytree(sd_model_dir, tmp_path / "no-vae")
    shutil.rmtree(no_vae / "vae")
    with pytest.raises(ValueError, match="A has no vae folder"):
        materialise_blend(no_vae, sd_model_dir, 0.5, tmp_path / "out")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        materialise_blend(finetune_dir, sd_model_dir, 0.5, tmp_path / "taken")


# --- manage.py model_blend and blend_rematerialise ------------------------------------------


@pytest.fixture
def models_dir(settings, tmp_path: Path) -> Path:
    settings.SEEDBANK_MODELS_DIR = tmp_path / "models"
    return settings.SEEDBANK_MODELS_DIR


@pytest.fixture
def finetune_version(db: None, finetune_dir: Path, model_version):
    from generator.services.model_versions import model_version_register

    return model_version_register(
        name="tiny-sd-finetune",
        path=finetune_dir,
        revision="seed0",
        native_width=64,
        native_height=64,
    )


def blend_command(a, b, alpha: float, name: str, *extra: str) -> str:
    out = io.StringIO()
    arguments = ["--a", str(a.pk), "--b", str(b.pk), "--alpha", str(alpha), "--name", name]
    call_command("model_blend", *arguments, *extra, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_model_blend_registers_its_definition_and_renders(
    models_dir: Path, model_version, finetune_version, half_blend: Path
) -> None:
    from generator.models import ModelVersion

    blend_command(finetune_version, model_version, 0.5, "half", "--license", "openrail")
    blend = ModelVersion.objects.get(name="half")
    assert blend.source_kind == ModelVersion.SourceKind.BLEND
    assert (blend.blend_a, blend.blend_b, blend.blend_alpha) == (
        finetune_version,
        model_version,
        0.5,
    )
    assert blend.license == "openrail"
    assert Path(blend.path) == models_dir / "half-main"
    assert (blend.native_width, blend.default_scheduler) == (64, model_version.default_scheduler)
    assert not blend.is_default
    # The command's blend is the library's blend: same bytes, same digest.
    assert blend.weights_digest == weights_digest(half_blend)
    assert pixel_sha(blend.path) == pixel_sha(blend.path) == pixel_sha(half_blend)
    # Running it again is a no-op; another definition under the same name is refused.
    blend_command(finetune_version, model_version, 0.5, "half")
    assert ModelVersion.objects.filter(name="half").count() == 1
    with pytest.raises(CommandError, match="already registered as something else"):
        blend_command(finetune_version, model_version, 0.25, "half")


@pytest.mark.django_db
def test_rematerialise_rebuilds_missing_or_damaged_files_with_the_same_digest(
    models_dir: Path, model_version, finetune_version
) -> None:
    from generator.models import ModelVersion
    from generator.services.model_versions import blend_rematerialise

    blend_command(finetune_version, model_version, 0.3, "rebuilt")
    blend = ModelVersion.objects.get(name="rebuilt")
    path = Path(blend.path)
    original = tree_bytes(path)
    shutil.rmtree(path)
    assert blend_rematerialise(blend) == path
    assert tree_bytes(path) == original
    assert weights_digest(path) == blend.weights_digest
    # Damaged bytes are replaced too; the rebuild is checked before it is put in place.
    with (path / WEIGHTS["unet"]).open("r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\x00\x00\x00\x00")
    blend_rematerialise(blend)
    assert tree_bytes(path) == original
    call_command("model_blend", "--rebuild", str(blend.pk), stdout=io.StringIO())
    assert tree_bytes(path) == original
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.django_db
def test_a_blend_whose_ingredient_changed_is_not_rebuilt(
    models_dir: Path, model_version, finetune_version, tmp_path: Path
) -> None:
    from generator.models import ModelVersion
    from generator.services.model_versions import RegistryError, blend_rematerialise

    moved = shutil.copytree(Path(finetune_version.path), tmp_path / "ft-copy")
    finetune_version.path = str(moved)
    finetune_version.save(update_fields=["path"])
    blend_command(finetune_version, model_version, 0.5, "fragile")
    blend = ModelVersion.objects.get(name="fragile")
    shutil.rmtree(blend.path)
    config = moved / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace("1000", "999"))
    with pytest.raises(RegistryError, match="have changed"):
        blend_rematerialise(blend)
    assert not Path(blend.path).exists()


@pytest.mark.django_db
def test_model_blend_refuses_bad_requests(
    models_dir: Path, model_version, finetune_version, sd_model_dir: Path, tmp_path: Path
) -> None:
    from django.utils import timezone

    from generator.services.model_versions import model_version_register

    other = copy_with(sd_model_dir, tmp_path / "other-arch", "unet", _reshape_conv_out)
    other_version = model_version_register(name="other-arch", path=other)
    with pytest.raises(CommandError, match=r"'conv_out\.bias' has shape"):
        blend_command(other_version, model_version, 0.5, "nope")
    with pytest.raises(CommandError, match="--alpha must be from 0 to 1"):
        blend_command(finetune_version, model_version, 2.0, "nope")
    with pytest.raises(CommandError, match="a blend needs two models"):
        blend_command(model_version, model_version, 0.5, "nope")
    with pytest.raises(CommandError, match="--a: no model version with id 999999"):
        blend_command(type(model_version)(pk=999999), model_version, 0.5, "nope")
    with pytest.raises(CommandError, match="needs --a, --b, --alpha and --name"):
        call_command("model_blend", "--a", str(model_version.pk))
    finetune_version.archived_at = timezone.now()
    finetune_version.save(update_fields=["archived_at"])
    with pytest.raises(CommandError, match="is archived"):
        blend_command(finetune_version, model_version, 0.5, "nope")
    assert not (models_dir / "nope-main").exists()
