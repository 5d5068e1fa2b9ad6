"""The recipe rules shared by the form, the API and the services."""

import pytest

from engine.recipe import SEED_MAX, Recipe, RecipeLimits, recipe_errors

LIMITS = RecipeLimits(max_side=1024, max_steps=150, max_batch=8)


def recipe(**changes: object) -> Recipe:
    fields: dict[str, object] = {"model_version_id": 1, "prompt": "a red fox", "seed": 1}
    fields.update(changes)
    return Recipe(**fields)


def test_a_plain_recipe_is_acceptable() -> None:
    assert recipe_errors(recipe(), LIMITS) == {}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"prompt": "   "}, "prompt", "Write a prompt"),
        ({"width": 100}, "width", "multiple of 8"),
        ({"height": 2048}, "height", "between 64 and 1024"),
        ({"width": 32}, "width", "between 64 and 1024"),
        ({"steps": 0}, "steps", "between 1 and 150"),
        ({"steps": 151}, "steps", "between 1 and 150"),
        ({"seed": -1}, "seed", "between 0 and"),
        ({"seed": SEED_MAX + 1}, "seed", "between 0 and"),
        ({"scheduler": "Magic"}, "scheduler", "Unknown scheduler"),
        ({"guidance": 31.0}, "guidance", "between 0 and 30"),
        ({"batch_size": 9}, "batch_size", "between 1 and 8"),
        ({"precision": "int4"}, "precision", "Precision must be"),
        ({"seed": SEED_MAX, "batch_size": 2}, "seed", "runs past the largest seed"),
    ],
)
def test_bad_recipes_name_the_field_and_say_why(changes, field, fragment) -> None:
    errors = recipe_errors(recipe(**changes), LIMITS)
    assert field in errors
    assert any(fragment in message for message in errors[field])


def test_edges_are_inclusive() -> None:
    assert recipe_errors(recipe(seed=0, width=64, height=1024, steps=150), LIMITS) == {}
    assert recipe_errors(recipe(seed=SEED_MAX), LIMITS) == {}


def test_blank_seed_is_drawn_once_and_kept() -> None:
    drawn = recipe(seed=None).with_seed()
    assert drawn.seed is not None and 0 <= drawn.seed <= SEED_MAX
    assert drawn.with_seed() is drawn


def test_pixel_key_ignores_batch_size_but_not_pixels() -> None:
    assert recipe(batch_size=1).pixel_key() == recipe(batch_size=3).pixel_key()
    assert recipe().pixel_key() != recipe(seed=2).pixel_key()
    assert recipe().pixel_key() != recipe(negative_prompt="x").pixel_key()
