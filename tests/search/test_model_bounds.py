"""A CLIP folder may declare its own cosine bounds; the site uses them over its defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from search.selectors import embedding_model_bounds, relevance_bound
from search.services import embedding_model_register

SHIPPED_CLIP = Path(__file__).resolve().parents[2] / "models" / "seedbank-scenes-clip"


def test_the_scene_clip_declares_bounds_measured_when_it_was_trained() -> None:
    declared = json.loads((SHIPPED_CLIP / "open_clip_config.json").read_text())["seedbank"]
    bounds = embedding_model_bounds(SHIPPED_CLIP)
    assert bounds == declared
    assert 0.0 < bounds["relevance_cosine"] < bounds["near_duplicate_cosine"] < 1.0
    # A search's best match under it meant nothing to the model (issue #27).
    assert bounds["relevance_cosine"] < bounds["nonsense_cosine"] < 1.0


def test_a_folder_without_bounds_takes_the_sites_defaults(tmp_path: Path) -> None:
    folder = shutil.copytree(SHIPPED_CLIP, tmp_path / "clip")
    config = json.loads((folder / "open_clip_config.json").read_text())
    del config["seedbank"]
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    assert embedding_model_bounds(folder) == {
        "relevance_cosine": None,
        "near_duplicate_cosine": None,
        "nonsense_cosine": None,
    }


@pytest.mark.django_db
def test_registering_the_scene_clip_keeps_its_bounds(settings) -> None:
    model = embedding_model_register(path=SHIPPED_CLIP)
    declared = embedding_model_bounds(SHIPPED_CLIP)
    assert model.relevance_cosine == declared["relevance_cosine"]
    assert model.near_duplicate_cosine == declared["near_duplicate_cosine"]
    assert model.nonsense_cosine == declared["nonsense_cosine"]
    settings.SEEDBANK_RELEVANCE_COSINE = 0.5
    assert relevance_bound(model) == declared["relevance_cosine"]  # its own, not the site's
