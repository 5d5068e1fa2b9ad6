"""A model version's recommended sampling (issue #29): stated by the shipped scene models'
registration, kept when edited in the admin, checked like a recipe's values."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from engine.training.shipped import GUIDANCE
from generator.management.commands.demo_models import (
    SCENES_BLEND_NAME,
    SCENES_OUTLINE_NAME,
    SCENES_SD_NAME,
)
from generator.models import ModelVersion
from generator.services.model_versions import model_version_recommend
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_a_model_that_states_nothing_samples_as_the_recipe_defaults() -> None:
    model = ModelVersionFactory()
    assert model.recommended_sampling() == {}
    assert model.sampling() == {
        "scheduler": "PNDM", "steps": 20, "guidance": 7.5, "width": 64, "height": 64
    }  # fmt: skip


def test_recommending_fills_only_what_the_model_does_not_state() -> None:
    model = ModelVersionFactory(recommended_guidance=3.0)
    model_version_recommend(
        model_version=model,
        sampling={"guidance": 2.0, "steps": 12},
        vocabulary={"en": "cats"},
    )
    model.refresh_from_db()
    assert model.recommended_sampling() == {"guidance": 3.0, "steps": 12}
    assert model.vocabulary_in("zh-hans") == "cats"  # no Chinese: English
    with pytest.raises(ValueError, match="seed"):
        model_version_recommend(model_version=model, sampling={"seed": 1})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"recommended_width": 64}, "__all__"),  # a size is both sides
        ({"recommended_width": 100, "recommended_height": 64}, "recommended_width"),
        ({"recommended_scheduler": "Warp drive"}, "recommended_scheduler"),
        ({"recommended_guidance": 31.0}, "recommended_guidance"),
        ({"recommended_steps": 0}, "recommended_steps"),
    ],
)
def test_recommended_values_are_checked(values: dict, field: str) -> None:
    model = ModelVersionFactory.build(**values)
    with pytest.raises(ValidationError) as refused:
        model.full_clean(validate_unique=False)
    assert field in refused.value.message_dict, refused.value.message_dict


def test_the_admin_edits_them(client, django_user_model) -> None:
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-1")
    model = ModelVersionFactory()
    client.force_login(admin)
    html = client.get(f"/admin/generator/modelversion/{model.pk}/change/").content.decode()
    for name in (
        "recommended_guidance",
        "recommended_steps",
        "recommended_scheduler",
        "recommended_width",
        "recommended_height",
        "vocabulary",
        "example_prompts",
    ):
        assert f'name="{name}"' in html, name


def test_the_shipped_scene_models_state_their_sampling_and_keep_an_edit(
    settings, tmp_path: Path, media_root: Path
) -> None:
    settings.SEEDBANK_MODELS_DIR = tmp_path / "models"  # where demo_models writes the blend
    call_command("demo_models", stdout=io.StringIO())
    names = (SCENES_SD_NAME, SCENES_OUTLINE_NAME, SCENES_BLEND_NAME)
    models = ModelVersion.objects.filter(name__in=names, archived_at__isnull=True)
    assert models.count() == 3
    for model in models:
        assert model.sampling() == {
            "guidance": GUIDANCE, "steps": 20, "scheduler": "PNDM", "width": 64, "height": 64
        }, model  # fmt: skip
        assert "circle" in model.vocabulary_in("en") and "圆形" in model.vocabulary_in("zh-hans")
        assert "a large red circle in the middle of a blue background" in (
            model.example_prompts_in("en")
        )
        assert "蓝色背景中间有一个大的红色圆形" in model.example_prompts_in("zh-hans")
    base = models.get(name=SCENES_SD_NAME)
    assert base.is_default and GUIDANCE == 2.0

    ModelVersion.objects.filter(pk=base.pk).update(recommended_guidance=2.5)  # an admin edit
    call_command("demo_models", stdout=io.StringIO())  # `make run` registers at every start
    base.refresh_from_db()
    assert (base.recommended_guidance, base.recommended_steps) == (2.5, 20)
