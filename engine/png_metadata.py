"""The text chunks every stored PNG carries (Django-free).

`parameters` is A1111's infotext, so the PNG drops into A1111, InvokeAI, civitai and friends;
`seedbank` is the exact JSON recipe, which loses nothing (model digest, precision, batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.infotext import InfotextRecipe, recipe_to_json, short_model_hash, to_infotext
from engine.pipeline import PngText


def png_text_for(recipe: Mapping[str, Any]) -> PngText:
    """Chunks for each image of a batch; `recipe` is a record's portable recipe
    (`Recipe.portable()` plus `model` and `model_digest`), whose seed and batch position are
    replaced by each image's own."""

    def chunks(seed: int, batch_index: int, batch_size: int) -> dict[str, str]:
        # The batch actually rendered: after an out-of-memory split it is smaller than asked.
        full = {**recipe, "seed": seed, "batch_index": batch_index, "batch_size": batch_size}
        infotext = to_infotext(
            InfotextRecipe(
                prompt=full["prompt"],
                negative_prompt=full["negative_prompt"],
                steps=full["steps"],
                scheduler=full["scheduler"],
                guidance=full["guidance"],
                seed=seed,
                width=full["width"],
                height=full["height"],
                model_name=full["model"],
                model_hash=short_model_hash(full["model_digest"]),
            )
        )
        return {"parameters": infotext, "seedbank": recipe_to_json(full)}

    return chunks
