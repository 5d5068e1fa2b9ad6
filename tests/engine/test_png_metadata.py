"""The chunks every render carries (engine.png_metadata): A1111's text names resources the way
A1111 does, and reads back, alone, to the same recipe."""

from __future__ import annotations

import hashlib

from engine.imports.a1111 import recipe_from_infotext
from engine.infotext import parse_infotext, recipe_from_json
from engine.png_metadata import ResourceNames, png_text_for
from engine.recipe import A1111_WEIGHTING, Hires, LoraUse, Recipe, ResourceUse


def sha(word: str) -> str:
    return hashlib.sha256(word.encode()).hexdigest()


OUTLINE, PAPER, VAE = sha("outline.safetensors"), sha("paper.safetensors"), sha("vae")
ADDNET = {OUTLINE: sha("outline tensors"), PAPER: sha("paper tensors")}
RECIPE = Recipe(
    prompt="a lighthouse on a cliff, (dusk:1.2)",
    negative_prompt="blurry",
    seed=11,
    steps=12,
    scheduler="DPM++ 2M Karras",
    guidance=6.5,
    width=64,
    height=96,
    loras=(
        LoraUse(resource=OUTLINE, weight=0.8, name="scenes-outline-lora@main"),
        LoraUse(resource=PAPER, weight=-0.25, name="paper@v2"),
    ),
    vae=ResourceUse(resource=VAE, name="scenes-vae@v1"),
    clip_skip=2,
    hires=Hires(scale=1.5, upscaler="Latent (nearest)", steps=6, denoise=0.45),
    prompt_weighting=A1111_WEIGHTING,  # "(dusk:1.2)" is emphasis, as A1111 reads it
)
NAMES = {
    OUTLINE: ResourceNames.of(kind="lora", name="scenes-outline-lora", sha256=OUTLINE,
                              addnet_sha256=ADDNET[OUTLINE]),
    PAPER: ResourceNames.of(kind="lora", name="paper", sha256=PAPER, addnet_sha256=ADDNET[PAPER]),
    VAE: ResourceNames.of(kind="vae", name="scenes-vae", sha256=VAE),
}  # fmt: skip


def portable(recipe: Recipe) -> dict:
    return {"model": "tiny-sd", "model_digest": "ab" * 32, **recipe.portable(),
            "batch_size": 1, "batch_index": 0}  # fmt: skip


def chunks(recipe: Recipe = RECIPE, names: dict | None = NAMES) -> dict[str, str]:
    assert recipe.seed is not None
    return png_text_for(portable(recipe), names)(recipe.seed, 0, 1)


def test_resource_names_are_the_short_hashes_a1111_writes():
    assert NAMES[OUTLINE].short_hash == ADDNET[OUTLINE][:12]  # "Lora hashes": addnet, 12 hex
    assert NAMES[VAE].short_hash == VAE[:10]  # "VAE hash": AutoV2
    assert ResourceNames.of(kind="lora", name="x", sha256=PAPER).short_hash == PAPER[:10]
    assert ResourceNames.of(kind="embedding", name="e", sha256=VAE).short_hash == VAE[:10]


def test_a1111_text_writes_loras_vae_clip_skip_and_hires_as_a1111_does():
    text = chunks()["parameters"]
    assert text == (
        "a lighthouse on a cliff, (dusk:1.2) <lora:scenes-outline-lora:0.8> <lora:paper:-0.25>\n"
        "Negative prompt: blurry\n"
        "Steps: 12, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 11, Size: 64x96, "
        f"Model hash: {'ab' * 5}, Model: tiny-sd, VAE hash: {VAE[:10]}, VAE: scenes-vae, "
        "Denoising strength: 0.45, Clip skip: 2, Hires upscale: 1.5, Hires steps: 6, "
        'Hires upscaler: Latent (nearest), Lora hashes: "scenes-outline-lora: '
        f'{ADDNET[OUTLINE][:12]}, paper: {ADDNET[PAPER][:12]}"'
    )


def test_the_a1111_text_alone_reads_back_to_the_same_recipe():
    text = chunks()["parameters"]
    source = recipe_from_infotext(text, key="k", location="x.png", raw={})
    assert source.prompt == RECIPE.prompt  # the tags are cut out again
    assert [(lora.hash, lora.weight) for lora in source.loras] == [
        (ADDNET[OUTLINE][:12], 0.8), (ADDNET[PAPER][:12], -0.25)]  # fmt: skip
    assert source.vae is not None and source.vae.hash == VAE[:10]
    assert (source.clip_skip, source.hires) == (2, RECIPE.hires)
    assert (source.unsupported, source.unavailable(), source.missing()) == ((), (), [])

    # The archive finds each file by its short hash (generator.selectors.resources); here a
    # prefix match over the three files stands in for the registered ones.
    digests = {**{ADDNET[k]: k for k in ADDNET}, VAE: VAE}
    files = {
        resource: next(digests[d] for d in digests if d.startswith(resource.hash))
        for resource in source.files()
    }
    again = source.recipe(None, files)
    assert again == RECIPE  # loras by file and weight, VAE, clip skip, hires: equal


def test_without_names_the_recipe_names_and_autov2_stand_in():
    text = chunks(names=None)["parameters"]
    parsed = parse_infotext(text)
    assert [tag.name for tag in parsed.networks] == ["scenes-outline-lora@main", "paper@v2"]
    assert parsed.lora_hashes == {"scenes-outline-lora@main": OUTLINE[:10], "paper@v2": PAPER[:10]}
    assert (parsed.vae_name, parsed.vae_hash) == ("scenes-vae@v1", VAE[:10])


def test_the_seedbank_chunk_still_carries_the_exact_recipe():
    exact = recipe_from_json(chunks()["seedbank"])
    assert Recipe.from_values(exact) == RECIPE
    assert exact["loras"][0] == {"resource": OUTLINE, "weight": 0.8,
                                 "name": "scenes-outline-lora@main"}  # fmt: skip


def test_a_recipe_without_resources_writes_none_of_their_params():
    plain = Recipe(prompt="a cat", seed=1, steps=4)
    text = chunks(plain, names={})["parameters"]
    for key in ("<lora", "Lora hashes", "VAE", "Clip skip", "Hires", "Denoising"):
        assert key not in text


def test_aliases_a1111_cannot_write_are_cleaned_and_kept_apart():
    recipe = Recipe(prompt="x", seed=1, loras=(
        LoraUse(resource=OUTLINE, weight=1.0), LoraUse(resource=PAPER, weight=1.0)))  # fmt: skip
    names = {
        OUTLINE: ResourceNames(name="a: <b>, c", kind="lora", short_hash="0123456789ab"),
        PAPER: ResourceNames(name="a b c", kind="lora", short_hash="ba9876543210"),
    }
    parsed = parse_infotext(chunks(recipe, names)["parameters"])
    assert [tag.name for tag in parsed.networks] == ["a b c", "a b c-ba9876543210"]
    assert list(parsed.lora_hashes.values()) == ["0123456789ab", "ba9876543210"]


def test_embeddings_are_written_as_ti_hashes_under_their_token():
    from engine.recipe import EmbeddingUse

    embedding = sha("easynegative.safetensors")
    use = EmbeddingUse(token="easynegative", resource=embedding, name="easynegative@v2")
    recipe = Recipe(prompt="a cat", negative_prompt="easynegative", seed=1, embeddings=(use,))
    names = {embedding: ResourceNames.of(kind="embedding", name="en", sha256=embedding)}
    assert parse_infotext(chunks(recipe, names)["parameters"]).ti_hashes == {
        "easynegative": embedding[:10]
    }


def test_a_plain_prompt_is_written_so_a1111_reads_the_same_words():
    from engine.imports.a1111 import recipe_from_infotext
    from engine.prompt_weighting import parse_emphasis

    plain = Recipe(prompt="a (red) [x] circle", negative_prompt="c:\\d", seed=1, steps=4)
    text = png_text_for(plain.portable() | {"model": "m", "model_digest": "0" * 64})(1, 0, 1)
    parameters = text["parameters"]
    assert parameters.startswith("a \\(red\\) \\[x\\] circle")
    source = recipe_from_infotext(parameters, key="k", location="x.png", raw={})
    # Read back as A1111 reads it: emphasis syntax, whose escapes give the very same words.
    assert source.prompt_weighting == A1111_WEIGHTING
    assert parse_emphasis(source.prompt) == [("a (red) [x] circle", 1.0)]
    assert parse_emphasis(source.negative_prompt) == [("c:\\d", 1.0)]
