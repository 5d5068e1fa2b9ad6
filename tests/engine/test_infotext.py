"""A1111 infotext and the "seedbank" JSON chunk: round trips, real-format fixtures, bad input."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from engine.infotext import (
    PARAMETERS_CHUNK,
    SEEDBANK_CHUNK,
    InfotextError,
    InfotextRecipe,
    NetworkTag,
    parse_infotext,
    quote,
    read_png_chunks,
    recipe_from_json,
    recipe_to_json,
    short_model_hash,
    to_infotext,
    unquote,
)
from engine.recipe import Recipe, field_type, recipe_fields
from engine.schedulers import SCHEDULERS

FIXTURES = Path(__file__).parent / "fixtures" / "a1111_infotext"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
KNOWN_KEYS = {
    "Steps", "Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model", "VAE hash", "VAE",
    "Denoising strength", "Clip skip", "Hires upscale", "Hires resize", "Hires steps",
    "Hires upscaler", "Lora hashes", "TI hashes",
}  # fmt: skip
# A1111's extra-network tag (modules/extra_networks.py re_extra_net).
NETWORK_TAG = re.compile(r"<(\w+):([^>]+)>")

# --- strategies ----------------------------------------------------------------------------

# What the format has to carry: its own separators (",", ":", newline), JSON's escapes ('"',
# "\\"), whitespace of several kinds, full-width punctuation, CJK and emoji. Mixed with any
# Unicode character (surrogates excluded: they are not text and cannot be UTF-8 encoded).
_TRICKY = list(",:\"\\\n\t\r ，：“”「」一只猫月光🐱🌙✨é\u2028\u3000\x85\x1f{}()[]<>=|'#")
_CHAR = st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8"))
_LINE_CHAR = st.one_of(
    st.sampled_from([c for c in _TRICKY if c != "\n"]),
    st.characters(codec="utf-8", exclude_characters="\n"),
)


def survives_a1111(text: str) -> bool:
    """Whether A1111's reader gives back this prompt text as written (the only exclusions).

    Each rule is a line of A1111's parse_generation_parameters (modules/infotext_utils.py):
    - `line = line.strip()` runs on every prompt line, so whitespace at a line's ends is lost;
    - `prompt += ("" if prompt == "" else "\\n") + line` drops blank lines before the first
      text, so a non-empty prompt cannot start with an empty line;
    - `if line.startswith("Negative prompt:")` is checked on every line, so no line of a
      prompt (or of a negative prompt) may start with that;
    - extra_networks.parse_prompt cuts every `<word:…>` out of the (positive) prompt: such text
      is an extra network, never words. (The negative prompt keeps it, as A1111 does.)
    A prompt line that looks like a params line needs no exclusion: only the last line is read
    as params, and to_infotext always writes its own params line last.
    """
    lines = text.split("\n")
    return (
        all(line == line.strip() for line in lines)
        and (text == "" or lines[0] != "")
        and not any(line.startswith("Negative prompt:") for line in lines)
    )


def survives_as_prompt(text: str) -> bool:
    return survives_a1111(text) and NETWORK_TAG.search(text) is None


# Lines are stripped while generating (else most examples would be thrown away by the first
# rule); survives_a1111 still filters, so the exclusions above are the whole story.
prompts = (
    st.lists(st.text(_LINE_CHAR, max_size=25).map(str.strip), max_size=4)
    .map("\n".join)
    .filter(survives_a1111)
)
# Params values (model name, hash, extras) are quoted when needed, so any text at all goes.
param_values = st.text(_CHAR, max_size=25)
# A1111's key pattern; the recipe fields' own keys cannot be extras, and "Schedule type" is
# left out because "Schedule type: Karras" beside "DPM++ 2M" reads back as the scheduler.
extra_keys = st.from_regex(r"\w[\w \-/]{1,15}", fullmatch=True).filter(
    lambda key: key not in KNOWN_KEYS and key != "Schedule type"
)

# Names and args of tags and hashes: A1111's syntax leaves out ":", ",", "<", ">" and newlines.
_tag_part = st.text(
    st.characters(codec="utf-8", exclude_characters=":,<>\n"), min_size=1, max_size=12
)
_hash_part = _tag_part.map(str.strip).filter(bool)
_numbers = st.floats(-4, 4, allow_nan=False)
network_tags = st.builds(
    NetworkTag,
    kind=st.from_regex(r"\w{1,8}", fullmatch=True),
    name=_tag_part,
    args=st.lists(_tag_part, max_size=3).map(tuple),
)

infotext_recipes = st.builds(
    InfotextRecipe,
    prompt=prompts.filter(survives_as_prompt),
    negative_prompt=prompts,
    steps=st.integers(1, 150),
    scheduler=st.sampled_from(list(SCHEDULERS)),
    guidance=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(1, 256).map(lambda n: n * 8),
    height=st.integers(1, 256).map(lambda n: n * 8),
    model_name=param_values,
    model_hash=st.one_of(st.text("0123456789abcdef", min_size=10, max_size=10), param_values),
    networks=st.lists(network_tags, max_size=3).map(tuple),
    lora_hashes=st.dictionaries(_hash_part, _hash_part, max_size=3),
    ti_hashes=st.dictionaries(_hash_part, _hash_part, max_size=2),
    vae_name=param_values,
    vae_hash=param_values,
    clip_skip=st.integers(1, 12),
    hires_scale=st.one_of(st.none(), _numbers),
    hires_resize=st.one_of(st.none(), st.tuples(st.integers(0, 4096), st.integers(0, 4096))),
    hires_steps=st.integers(0, 150),
    hires_upscaler=param_values,
    denoising_strength=st.one_of(st.none(), _numbers),
    extra=st.dictionaries(extra_keys, param_values, max_size=4),
)


# --- infotext round trips ------------------------------------------------------------------


@given(infotext_recipes)
@example(
    InfotextRecipe(
        prompt=(
            'a "quoted", colon: prompt \\ with backslash\n一只猫 🐱\n\nSteps: 1, Seed: 2, Size: 8x8'
        ),
        negative_prompt="blurry,\nugly: very",
        scheduler="PNDM",
        guidance=7.0,
        model_name='dream, shaper: "8"',
        model_hash="6ce0161689",
        networks=(NetworkTag("lora", "add_detail", ("0.6",)), NetworkTag("lora", "more", ())),
        lora_hashes={"add_detail": "7c6bad76eb54", "more": "0123456789"},
        clip_skip=2,
        extra={"Version": "v1.10.1"},
    )
)
@example(InfotextRecipe(prompt="a\n", networks=(NetworkTag("hypernet", "x", ("1",)),)))
@example(InfotextRecipe(prompt="", networks=(NetworkTag("lora", " padded ", ("1",)),)))
@example(InfotextRecipe(prompt="", negative_prompt="only a negative"))
@example(InfotextRecipe(prompt="", model_name=' padded "', extra={"Empty": ""}))
@example(InfotextRecipe(prompt="x", guidance=5e-324, seed=2**32 - 1))
def test_recipe_survives_infotext(recipe: InfotextRecipe) -> None:
    text = to_infotext(recipe)
    assert parse_infotext(text) == recipe


@given(infotext_recipes)
def test_guidance_comes_back_as_the_same_float(recipe: InfotextRecipe) -> None:
    guidance = parse_infotext(to_infotext(recipe)).guidance
    assert guidance == recipe.guidance
    assert math.copysign(1, guidance) == math.copysign(1, recipe.guidance)  # even -0.0


@given(param_values)
def test_quote_then_unquote_is_identity(value: str) -> None:
    assert unquote(quote(value)) == value


@pytest.mark.parametrize(
    "value", ['"quoted"', '"', " leading", "trailing ", "\tx", "a,b", "a:b", "a\nb"]
)
def test_values_a1111_would_change_are_quoted(value: str) -> None:
    written = to_infotext(InfotextRecipe(prompt="x", model_name=value))
    assert f"Model: {json.dumps(value, ensure_ascii=False)}" in written
    assert parse_infotext(written).model_name == value


def test_plain_values_are_written_bare() -> None:
    written = to_infotext(InfotextRecipe(prompt="x", model_name='v1-5 "pruned" 中文 a\\b'))
    # A1111's quote() leaves these alone, and its reader takes them back unchanged.
    assert written.endswith('Model: v1-5 "pruned" 中文 a\\b')
    assert parse_infotext(written).model_name == 'v1-5 "pruned" 中文 a\\b'


def test_cfg_scale_is_written_as_a1111_writes_a_float() -> None:
    # create_infotext puts p.cfg_scale (a float) straight into an f-string.
    assert "CFG scale: 7.0," in to_infotext(InfotextRecipe(prompt="x", guidance=7.0))
    assert "CFG scale: 7.5," in to_infotext(InfotextRecipe(prompt="x", guidance=7.5))
    assert "CFG scale: 0.1," in to_infotext(InfotextRecipe(prompt="x", guidance=0.1))


def test_written_layout_matches_a1111() -> None:
    recipe = InfotextRecipe(
        prompt="a lighthouse, dusk",
        negative_prompt="blurry",
        steps=20,
        scheduler="PNDM",
        guidance=7.5,
        seed=1234,
        width=512,
        height=768,
        model_name="tiny, sd",
        model_hash=short_model_hash(
            "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
        ),
        clip_skip=2,
        extra={"Version": "seedbank 0.1.0"},
    )
    assert to_infotext(recipe) == (
        "a lighthouse, dusk\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: PLMS, CFG scale: 7.5, Seed: 1234, Size: 512x768, "
        'Model hash: 6ce0161689, Model: "tiny, sd", Clip skip: 2, Version: seedbank 0.1.0'
    )


def test_empty_negative_and_model_are_left_out() -> None:
    assert to_infotext(InfotextRecipe(prompt="cat", scheduler="K-LMS", seed=3)) == (
        "cat\nSteps: 20, Sampler: LMS, CFG scale: 7.5, Seed: 3, Size: 512x512"
    )


@pytest.mark.parametrize(
    ("prompt", "read_back"),
    [
        ("  padded  ", "padded"),
        ("\nstarts blank", "starts blank"),
        ("first\nNegative prompt: second", "first"),
    ],
)
def test_the_documented_exclusions_really_do_not_survive(prompt: str, read_back: str) -> None:
    # Not a wish list: A1111 itself reads these back changed, so a lossless format cannot.
    assert not survives_a1111(prompt)
    assert parse_infotext(to_infotext(InfotextRecipe(prompt=prompt))).prompt == read_back


def test_a_prompt_line_shaped_like_params_is_still_prompt() -> None:
    prompt = "Steps: 5, Sampler: DDIM, CFG scale: 1, Seed: 9, Size: 64x64"
    recipe = InfotextRecipe(prompt=prompt, negative_prompt=prompt)
    assert parse_infotext(to_infotext(recipe)) == recipe


def test_extra_network_tags_are_cut_from_the_prompt_as_a1111_does() -> None:
    text = (
        "<lora:first:1>a cat, <lora:add_detail:0.6:0.6>, on a mat <hypernet:h:1>\n"
        "second line <lyco:x:te=0.5:unet=1>\n"
        "Negative prompt: <lora:kept:1> words\n"
        "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    )
    parsed = parse_infotext(text)
    # Replaced by nothing, so the comma stays (A1111 encodes it); a tagged line is stripped.
    assert parsed.prompt == "a cat, , on a mat\nsecond line"
    assert parsed.networks == (
        NetworkTag("lora", "first", ("1",)),
        NetworkTag("lora", "add_detail", ("0.6", "0.6")),
        NetworkTag("hypernet", "h", ("1",)),
        NetworkTag("lyco", "x", ("te=0.5", "unet=1")),
    )
    assert parsed.negative_prompt == "<lora:kept:1> words"  # A1111 reads no tags there


def test_written_resources_match_a1111_layout() -> None:
    recipe = InfotextRecipe(
        prompt="a lighthouse, dusk",
        scheduler="Euler",
        seed=3,
        networks=(NetworkTag("lora", "outline", ("0.8",)), NetworkTag("lora", "paper", ("1",))),
        lora_hashes={"outline": "0d3a1f2b9c4e", "paper": "7c6bad76eb54"},
        vae_name="vae-ft-mse",
        vae_hash="735e4c3a44",
        clip_skip=2,
        hires_scale=2.0,
        hires_steps=10,
        hires_upscaler="Latent",
        denoising_strength=0.5,
    )
    assert to_infotext(recipe) == (
        "a lighthouse, dusk <lora:outline:0.8> <lora:paper:1>\n"
        "Steps: 20, Sampler: Euler, CFG scale: 7.5, Seed: 3, Size: 512x512, "
        "VAE hash: 735e4c3a44, VAE: vae-ft-mse, Denoising strength: 0.5, Clip skip: 2, "
        "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, "
        'Lora hashes: "outline: 0d3a1f2b9c4e, paper: 7c6bad76eb54"'
    )
    assert parse_infotext(to_infotext(recipe)) == recipe
    # Clip skip 1 and hires steps 0 are A1111's defaults: not written.
    plain = to_infotext(dataclasses.replace(recipe, clip_skip=1, hires_steps=0))
    assert "Clip skip" not in plain and "Hires steps" not in plain


def test_tags_go_first_when_the_prompt_ends_inside_a_tag_shape() -> None:
    recipe = InfotextRecipe(prompt="a <b:c", networks=(NetworkTag("lora", "x", ("1",)),))
    written = to_infotext(recipe)
    assert written.startswith("<lora:x:1> a <b:c\n")
    assert parse_infotext(written) == recipe


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"networks": (NetworkTag("lora", "a:b", ("1",)),)}, "name and args"),
        ({"networks": (NetworkTag("lora", "x", ("",)),)}, "name and args"),
        ({"networks": (NetworkTag("lo ra", "x", ()),)}, "kind"),
        ({"lora_hashes": {"a,b": "0123"}}, "Lora hashes"),
        ({"ti_hashes": {"x": ""}}, "TI hashes"),
        ({"clip_skip": 0}, "Clip skip"),
        ({"hires_scale": math.inf}, "hires_scale"),
        ({"extra": {"Clip skip": "2"}}, "recipe field"),
        ({"extra": {"Lora hashes": "x: 1"}}, "recipe field"),
    ],
)
def test_resources_that_cannot_be_written_are_refused(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InfotextError, match=problem):
        to_infotext(dataclasses.replace(InfotextRecipe(prompt="x"), **changes))


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ("Clip skip: two", "Clip skip"),
        ("Clip skip: 0", "Clip skip"),
        ("Hires upscale: big", "Hires upscale"),
        ("Hires resize: 1024", "Hires resize"),
        ("Hires steps: -1", "Hires steps"),
        ("Denoising strength: strong", "Denoising strength"),
        ('Lora hashes: "no hash here"', "Lora hashes"),
    ],
)
def test_bad_resource_params_say_what_is_wrong(params: str, problem: str) -> None:
    text = f"a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, {params}"
    with pytest.raises(InfotextError, match=problem):
        parse_infotext(text)


def test_civitai_json_params_are_read_whole() -> None:
    # As Civitai and its A1111 extension write them: JSON, unquoted, commas inside.
    hashes = '{"vae": "63aeecb90f", "lora:kafka": "5a3385485b", "model": "529c72f6c3"}'
    resources = '[{"type":"lora","weight":0.8,"modelVersionId":1}]'
    text = (
        "a cat <lora:kafka:0.8>\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, "
        f"Hashes: {hashes}, Civitai resources: {resources}, Civitai metadata: {{}}, Version: v1"
    )
    parsed = parse_infotext(text)
    assert parsed.extra == {"Hashes": hashes, "Civitai resources": resources,
                            "Civitai metadata": "{}", "Version": "v1"}  # fmt: skip
    assert parse_infotext(to_infotext(parsed)) == parsed
    odd = InfotextRecipe(prompt="x", extra={"Hashes": "{} and more"})  # not JSON: quoted
    assert parse_infotext(to_infotext(odd)) == odd


# --- fixtures in A1111's real format --------------------------------------------------------


def test_every_fixture_has_expected_values() -> None:
    assert sorted(path.name for path in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_expected_recipe(name: str) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    # Through JSON, as the expectations are written: tuples read as lists.
    assert json.loads(json.dumps(dataclasses.asdict(parse_infotext(text)))) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_survives_being_written_again(name: str) -> None:
    parsed = parse_infotext((FIXTURES / name).read_text(encoding="utf-8"))
    assert parse_infotext(to_infotext(parsed)) == parsed


def test_a1111_19_schedule_type_folds_into_the_scheduler() -> None:
    base = "cat\nSteps: 20, Sampler: {}, Schedule type: {}, CFG scale: 7, Seed: 1, Size: 64x64"
    karras = parse_infotext(base.format("DPM++ 2M", "Karras"))
    assert karras.scheduler == "DPM++ 2M Karras" and "Schedule type" not in karras.extra
    # Other pairs name no catalogued scheduler: the sampler stays, the schedule type is kept.
    other = parse_infotext(base.format("Euler", "Karras"))
    assert other.scheduler == "Euler" and other.extra == {"Schedule type": "Karras"}
    assert parse_infotext(to_infotext(other)) == other
    with pytest.raises(InfotextError, match="DPM\\+\\+ 2M Karras"):
        to_infotext(
            InfotextRecipe(prompt="x", scheduler="DPM++ 2M", extra={"Schedule type": "Karras"})
        )


def test_canonical_sampler_names_are_read_too() -> None:
    text = "cat\nSteps: 20, Sampler: K-LMS, CFG scale: 7, Seed: 1, Size: 64x64"
    assert parse_infotext(text).scheduler == "K-LMS"


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("just a prompt, no parameters", "No parameters line"),
        ("", "No parameters line"),
        ("a cat\nSteps: 20, Sampler: Euler", "No parameters line"),
        ("a cat\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "Steps"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64", "Size"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x", "Size"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: high, Seed: 1, Size: 64x64", "CFG"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: nan, Seed: 1, Size: 64x64", "CFG"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: inf, Seed: 1, Size: 64x64", "CFG"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: -1, Size: 64x64", "Seed"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: ١٢, Size: 64x64", "Seed"),
        ("a cat\nSteps: 2.5, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64", "Steps"),
        ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Size: 64x64", "Seed"),
        ("a cat\nSteps: 20, CFG scale: 7, Seed: 1, Size: 64x64", "Sampler"),
        ("a cat\nSteps: 20, Sampler: DPM++ SDE, CFG scale: 7, Seed: 1, Size: 8x8", "DPM\\+\\+ SDE"),
    ],
)
def test_bad_infotext_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InfotextError, match=problem):
        parse_infotext(text)


def test_infotext_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_infotext("no params here")


@pytest.mark.parametrize(
    "changes",
    [
        {"guidance": math.nan},
        {"guidance": math.inf},
        {"seed": -1},
        {"steps": True},
        {"scheduler": "DPM++ SDE"},
        {"extra": {"Seed": "1"}},
        {"extra": {"x": "one-letter names do not match A1111's key pattern"}},
        {"extra": {"bad, name": "v"}},
        {"extra": {"Number": 3}},
    ],
)
def test_recipes_that_cannot_be_written_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InfotextError):
        to_infotext(dataclasses.replace(InfotextRecipe(prompt="x"), **changes))


# --- the "seedbank" JSON chunk -------------------------------------------------------------

_json_text = st.text(st.characters(codec="utf-8"), max_size=40)
# One strategy per field of engine.recipe.Recipe, any subset of them per example.
RECIPE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model_version_id": st.integers(1, 2**31),
    "mode": st.sampled_from(["txt2img", "img2img", "inpaint"]),
    "prompt": _json_text,
    "negative_prompt": _json_text,
    "seed": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    "scheduler": st.sampled_from(list(SCHEDULERS)),
    "steps": st.integers(1, 150),
    "guidance": st.floats(allow_nan=False, allow_infinity=False),
    "width": st.integers(8, 2048),
    "height": st.integers(8, 2048),
    "precision": st.sampled_from(["fp32", "fp16"]),
    "batch_size": st.integers(1, 8),
    "init_image_id": st.one_of(st.none(), st.integers(1, 2**31)),
    "mask_id": st.one_of(st.none(), st.integers(1, 2**31)),
    "strength": st.one_of(st.none(), st.floats(0.0, 1.0)),
    # Nested fields in their JSON form (Recipe.portable()).
    "loras": st.lists(
        st.fixed_dictionaries(
            {"resource": st.text("0123456789abcdef", min_size=64, max_size=64),
             "weight": st.floats(-4, 4), "name": _json_text}
        ),
        max_size=3,
    ),
    "vae": st.one_of(st.none(), st.fixed_dictionaries(
        {"resource": st.text("0123456789abcdef", min_size=64, max_size=64), "name": _json_text}
    )),
    "embeddings": st.lists(
        st.fixed_dictionaries(
            {"token": _json_text, "resource": st.text("0123456789abcdef", min_size=64,
             max_size=64), "name": _json_text}
        ),
        max_size=2,
    ),
    "clip_skip": st.integers(1, 12),
    "prompt_weighting": _json_text,
    "hires": st.one_of(st.none(), st.fixed_dictionaries(
        {"scale": st.floats(1, 4), "upscaler": st.sampled_from(["Latent", "Lanczos"]),
         "steps": st.integers(0, 150), "denoise": st.floats(0, 1)}
    )),
}  # fmt: skip
_PLAIN: dict[type, st.SearchStrategy[Any]] = {
    int: st.integers(0, 2**31),
    float: st.floats(allow_nan=False, allow_infinity=False),
    str: _json_text,
}


def _by_type(recipe_field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    kind, nullable = field_type(recipe_field)
    return st.one_of(st.none(), _PLAIN[kind]) if nullable else _PLAIN[kind]


# Fields added since (SDXL's…) are plain values, drawn by their type; nested ones need theirs.
recipe_dicts = st.fixed_dictionaries(
    {},
    optional={
        **{f.name: _by_type(f) for f in recipe_fields() if field_type(f)[0] in _PLAIN},
        **RECIPE_FIELDS,
    },
)


def test_recipe_dict_strategy_covers_every_recipe_field() -> None:
    nested = {f.name for f in recipe_fields() if field_type(f)[0] not in _PLAIN}
    assert nested <= set(RECIPE_FIELDS)


@given(recipe_dicts)
def test_recipe_survives_json(recipe: dict[str, Any]) -> None:
    assert recipe_from_json(recipe_to_json(recipe)) == recipe


@given(recipe_dicts)
def test_recipe_json_is_canonical(recipe: dict[str, Any]) -> None:
    text = recipe_to_json(recipe)
    reordered = dict(reversed(list(recipe.items())))
    assert recipe_to_json(reordered) == text  # equal recipes, equal bytes
    compact = json.dumps(
        json.loads(text), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    assert text == compact


def test_recipe_json_layout() -> None:
    recipe = {"seed": 7, "prompt": "一只猫", "loras": [], "guidance": 7.5, "hires": None}
    assert recipe_to_json(recipe) == (
        '{"format":"seedbank-recipe","guidance":7.5,"hires":null,"loras":[],"prompt":"一只猫",'
        '"seed":7,"version":1}'
    )
    full = Recipe(model_version_id=3, prompt="一只猫", seed=7).as_dict()
    assert set(json.loads(recipe_to_json(full))) == {*full, "format", "version"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"version": 1, "prompt": "x"}', "format"),
        ('{"format": "other", "version": 1}', "format"),
        ('{"format": "seedbank-recipe"}', "version"),
        ('{"format": "seedbank-recipe", "version": 2}', "version"),
        ('{"format": "seedbank-recipe", "version": true}', "version"),
        ('{"format": "seedbank-recipe", "version": 1.0}', "version"),
        ('{"format": "seedbank-recipe", "version": 1, "seed": 1, "seed": 2}', "repeats"),
        ('{"format": "seedbank-recipe", "version": 1, "guidance": NaN}', "NaN"),
    ],
)
def test_bad_seedbank_chunks_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InfotextError, match=problem):
        recipe_from_json(text)


@pytest.mark.parametrize(
    "recipe",
    [{"format": "x"}, {"version": 2}, {"guidance": math.nan}, {"seed": object()}],
)
def test_recipes_that_cannot_be_json_are_refused(recipe: dict[str, Any]) -> None:
    with pytest.raises(InfotextError):
        recipe_to_json(recipe)


# --- PNG chunks ----------------------------------------------------------------------------


def _noise_image() -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, size=(24, 16, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def test_both_chunks_survive_a_png_round_trip_without_moving_pixels() -> None:
    from engine.pipeline import pixel_sha256, png_bytes

    recipe = InfotextRecipe(
        prompt="一只猫, a cat: sitting",
        negative_prompt="blurry\nugly",
        scheduler="DPM++ 2M Karras",
        model_name="tiny, sd",
        model_hash="6ce0161689",
    )
    seedbank = Recipe(model_version_id=1, prompt=recipe.prompt, seed=recipe.seed).as_dict()
    chunks = {PARAMETERS_CHUNK: to_infotext(recipe), SEEDBANK_CHUNK: recipe_to_json(seedbank)}
    image = _noise_image()

    tagged = png_bytes(image, chunks)
    read = read_png_chunks(tagged)
    assert read == chunks
    assert parse_infotext(read[PARAMETERS_CHUNK]) == recipe
    assert recipe_from_json(read[SEEDBANK_CHUNK]) == seedbank
    with Image.open(io.BytesIO(tagged)) as decoded:
        assert pixel_sha256(decoded) == pixel_sha256(image)
    with Image.open(io.BytesIO(png_bytes(image))) as plain:
        assert pixel_sha256(plain) == pixel_sha256(image)
    assert png_bytes(image, chunks) == tagged  # same recipe, same bytes


def test_a_png_without_text_has_no_chunks() -> None:
    from engine.pipeline import png_bytes

    assert read_png_chunks(png_bytes(_noise_image())) == {}


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    _noise_image().save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,
        "a str, not bytes",
        pytest.param("jpeg", id="jpeg"),
        pytest.param("truncated", id="truncated-png"),
    ],
)
def test_non_png_input_raises_infotext_error(data: Any) -> None:
    from engine.pipeline import png_bytes

    if data == "jpeg":
        data = _jpeg()
    elif data == "truncated":
        data = png_bytes(_noise_image(), {"parameters": "x"})[:60]
    with pytest.raises(InfotextError, match="Not a readable PNG"):
        read_png_chunks(data)
