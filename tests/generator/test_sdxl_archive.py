"""SDXL models in the archive: the family is recorded at registration, refiners stay out of the
model choice, the recipe rules know each model's family and refiner, and the worker finds (and
checks) the refiner's files by digest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from engine.recipe import REFINER_SWITCH_SUGGESTED, Recipe
from generator.models import Image, ModelVersion
from generator.selectors.model_versions import (
    ModelUnavailable,
    image_model_problem,
    model_version_by_digest,
    model_version_refiner_check,
    model_version_resolve,
)
from generator.selectors.recipes import (
    model_versions_refiners,
    model_versions_renderable,
    recipe_validate,
)
from generator.services.model_versions import (
    RegistryError,
    blend_create,
    model_add,
    model_version_register,
)
from generator.services.render_jobs import render_job_create
from generator.services.rendering import render_request_for
from tests.generator.sdxl_support import TinySdxl, tiny_sdxl_folders, tiny_sdxl_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdxl(db: None, media_root: Path) -> TinySdxl:
    return tiny_sdxl_register()


def _recipe(model: ModelVersion, **fields) -> Recipe:
    return Recipe(model_version_id=model.pk, prompt="a red circle", seed=3, steps=4, **fields)


def _errors(recipe: Recipe) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        recipe_validate(recipe=recipe)
    return caught.value.message_dict


def test_registration_records_each_models_family(sdxl: TinySdxl, model_version) -> None:
    assert model_version.family == ModelVersion.Family.SD
    assert sdxl.base.family == ModelVersion.Family.SDXL
    assert sdxl.refiner.family == ModelVersion.Family.SDXL_REFINER
    # model_add checks the components each family's pipeline reads: a refiner has no first
    # text encoder, and registers all the same.
    assert ModelVersion.objects.get(name="tiny-sdxl-refiner").family == "sdxl-refiner"


def test_a_folder_of_another_pipeline_is_refused(tmp_path: Path, media_root: Path) -> None:
    _, refiner = tiny_sdxl_folders()
    folder = tmp_path / "other"
    shutil.copytree(refiner, folder)
    index = folder / "model_index.json"
    index.write_text(index.read_text().replace("StableDiffusionXLImg2ImgPipeline", "FluxPipeline"))
    with pytest.raises(ValidationError, match="FluxPipeline models are not rendered here"):
        model_version_register(name="other", path=folder)
    with pytest.raises(RegistryError, match="FluxPipeline"):
        model_add(path=folder, name="other")


def test_refiners_stay_out_of_the_model_choice(sdxl: TinySdxl, model_version) -> None:
    assert set(model_versions_renderable()) == {model_version, sdxl.base}
    assert set(model_versions_refiners()) == {sdxl.base, sdxl.refiner}


def test_blends_need_two_models_of_one_family(sdxl: TinySdxl, model_version) -> None:
    with pytest.raises(RegistryError, match="two models of one family"):
        blend_create(a=model_version, b=sdxl.base, alpha=0.5, name="mixed")


def test_a_refiner_is_found_by_name_revision_or_digest(sdxl: TinySdxl) -> None:
    digest = sdxl.refiner.weights_digest
    for ref in ("tiny-sdxl-refiner", "tiny-sdxl-refiner@seed0", digest, digest.upper()):
        assert model_version_resolve(ref=ref) == sdxl.refiner, ref
    assert model_version_resolve(ref="tiny-sdxl-refiner@other") is None
    assert model_version_resolve(ref="") is None
    assert model_version_by_digest(digest=digest) == sdxl.refiner
    sdxl.refiner.archived_at = timezone.now()
    sdxl.refiner.save(update_fields=["archived_at"])
    assert model_version_resolve(ref="tiny-sdxl-refiner") is None
    # Archived, it still names the files its records were made with (exports, reruns).
    assert model_version_by_digest(digest=digest) == sdxl.refiner


def test_an_sdxl_recipe_with_its_refiner_is_accepted(sdxl: TinySdxl) -> None:
    recipe = _recipe(
        sdxl.base,
        prompt_2="a green square",
        original_width=128,
        original_height=128,
        refiner=sdxl.refiner.weights_digest,
        refiner_switch_at=REFINER_SWITCH_SUGGESTED,
    )
    assert recipe_validate(recipe=recipe) == sdxl.base
    # Any SDXL model may be the refiner.
    base_refined = _recipe(sdxl.base, refiner=sdxl.base.weights_digest, refiner_switch_at=0.5)
    assert recipe_validate(recipe=base_refined) == sdxl.base


def test_sdxl_fields_on_an_sd_model_are_refused_by_name(model_version) -> None:
    errors = _errors(_recipe(model_version, prompt_2="a green square", crop_top=16))
    assert set(errors) == {"prompt_2", "crop_top"}
    assert "is for SDXL models" in errors["prompt_2"][0]
    assert "Stable Diffusion 1.x/2.x" in errors["prompt_2"][0]


def test_a_refiner_as_the_model_is_refused(sdxl: TinySdxl) -> None:
    errors = _errors(_recipe(sdxl.refiner))
    assert list(errors) == ["model_version"]
    assert "only finishes another model's picture" in errors["model_version"][0]


@pytest.mark.parametrize("case", ["unknown", "archived", "sd"])
def test_a_refiner_that_cannot_refine_is_refused_on_refiner(
    case: str, sdxl: TinySdxl, model_version
) -> None:
    digest = {"unknown": "c" * 64, "archived": sdxl.refiner.weights_digest}.get(
        case, model_version.weights_digest
    )
    if case == "archived":
        sdxl.refiner.archived_at = timezone.now()
        sdxl.refiner.save(update_fields=["archived_at"])
    errors = _errors(_recipe(sdxl.base, refiner=digest, refiner_switch_at=0.8))
    assert list(errors) == ["refiner"]
    expected = "must be an SDXL model" if case == "sd" else "not archived has the weights digest"
    assert expected in errors["refiner"][0]


def test_the_worker_gets_the_refiners_folder_and_refuses_changed_files(
    user, tmp_path: Path, media_root: Path, django_capture_on_commit_callbacks
) -> None:
    base_folder, refiner_folder = tiny_sdxl_folders()
    base = model_add(path=base_folder, name="tiny-sdxl", native_size=64)
    copy = tmp_path / "refiner-copy"
    shutil.copytree(refiner_folder, copy)
    refiner = model_version_register(name="refiner-copy", path=copy)
    recipe = _recipe(base, refiner=refiner.weights_digest, refiner_switch_at=0.8)
    with django_capture_on_commit_callbacks(execute=False):
        job = render_job_create(owner=user, recipe=recipe)
    image = Image.objects.get(job=job)
    request = render_request_for(
        image=image, model_version=base, seeds=[image.seed], batch_index_offset=0
    )
    assert request.refiner_model_path == str(copy)
    assert image_model_problem(image=image) is None

    config = copy / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace("0.012", "0.013"))
    with pytest.raises(ModelUnavailable, match="have changed") as caught:
        render_request_for(
            image=image, model_version=base, seeds=[image.seed], batch_index_offset=0
        )
    assert refiner.weights_digest in str(caught.value) and str(copy) in str(caught.value)


def test_of_two_registrations_of_a_refiner_the_one_with_its_files_serves(
    tmp_path: Path, media_root: Path
) -> None:
    _, refiner_folder = tiny_sdxl_folders()
    copy = tmp_path / "refiner-copy"
    shutil.copytree(refiner_folder, copy)
    first = model_version_register(name="refiner-copy", path=copy)
    second = model_version_register(name="tiny-sdxl-refiner", path=refiner_folder)
    assert first.weights_digest == second.weights_digest
    assert model_version_refiner_check(digest=first.weights_digest) == first
    shutil.rmtree(copy)
    assert model_version_refiner_check(digest=first.weights_digest) == second
    with pytest.raises(ModelUnavailable, match="No model with weights digest"):
        model_version_refiner_check(digest="d" * 64)


def test_a_record_whose_refiner_is_gone_says_so(sdxl: TinySdxl, user, media_root: Path) -> None:
    recipe = _recipe(sdxl.base, refiner=sdxl.refiner.weights_digest, refiner_switch_at=0.8)
    job = render_job_create(owner=user, recipe=recipe)
    image = Image.objects.get(job=job)
    sdxl.refiner.delete()
    problem = image_model_problem(image=image)
    assert problem is not None and "refiner" in problem
    assert image.refiner in problem
