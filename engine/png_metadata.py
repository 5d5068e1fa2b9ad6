"""The text chunks every stored PNG carries (Django-free).

`parameters` is A1111's infotext, so the PNG drops into A1111, InvokeAI, civitai and friends;
`seedbank` is the exact JSON recipe, which loses nothing (model digest, precision, batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.infotext import InfotextRecipe, recipe_to_json, short_model_hash, to_infotext
from engine.png_files import PngText

_INFOTEXT_FIELDS = tuple(field.name for field in dataclasses.fields(InfotextRecipe))


def png_text_for(recipe: Mapping[str, Any]) -> PngText:
    """Chunks for each image of a batch; `recipe` is a record's portable recipe
    (`Recipe.portable()` plus `model` and `model_digest`), whose seed and batch position are
    replaced by each image's own."""

    def chunks(seed: int, batch_index: int, batch_size: int) -> dict[str, str]:
        # The batch actually rendered: after an out-of-memory split it is smaller than asked.
        full = {**recipe, "seed": seed, "batch_index": batch_index, "batch_size": batch_size}
        # The A1111 record shares the recipe's names for what it can carry; the rest of the
        # recipe (precision, mode, batch) lives in the exact "seedbank" chunk.
        shared = {name: full[name] for name in _INFOTEXT_FIELDS if name in full}
        infotext = to_infotext(
            InfotextRecipe(
                **shared,
                model_name=full["model"],
                model_hash=short_model_hash(full["model_digest"]),
            )
        )
        return {"parameters": infotext, "seedbank": recipe_to_json(full)}

    return chunks
