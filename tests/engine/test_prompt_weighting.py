"""A1111 emphasis: the parser against A1111's own examples, chunking, and the encoder against
diffusers' on the shipped scene model (plain prompts must give the very same bits)."""

from __future__ import annotations

import ast
import copy
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from engine import prompt_weighting
from engine.prompt_weighting import (
    CHUNK_TOKENS,
    encode,
    encode_pair,
    parse_emphasis,
    tokenize_chunks,
    uses_emphasis,
)
from engine.torch_compat import ensure_torchvision

ensure_torchvision()

from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import (  # noqa: E402
    StableDiffusionPipeline,
)

MODEL = Path(__file__).resolve().parents[2] / "models" / "seedbank-scenes-sd"
PLAIN = "a small red circle on the left of a yellow background"
LONG = ", ".join(["a small red circle on the left of a yellow background"] * 8)


# --- the parser ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        # A1111's docstring examples
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        ),
        # escapes, strays and brackets with nothing to close
        ("\\[x\\] \\\\ y", [("[x] \\ y", 1.0)]),
        ("C:\\path", [("C:path", 1.0)]),
        ("a) b] c", [("a) b] c", 1.0)]),
        ("a:1.5) b", [("a:1.5) b", 1.0)]),
        ("(a:1.2.3)", [("a:1.2.3", 1.1)]),
        ("[a", [("a", 1 / 1.1)]),
        ("[(a]", [("a", (1 / 1.1) * 1.1)]),
        ("(a:0.5", [("a:0.5", 1.1)]),
        # explicit weights, including A1111's zero and negative ones
        (
            "(a:.5) (b:2.) (c:0) (d:-1)",
            [("a", 0.5), (" ", 1.0), ("b", 2.0), (" ", 1.0), ("c", 0.0), (" ", 1.0), ("d", -1.0)],
        ),
        ("[[a]]", [("a", (1 / 1.1) * (1 / 1.1))]),
        # BREAK
        ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("a\nBREAK\tb", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("BREAK a", [("", 1.0), ("BREAK", -1.0), ("a", 1.0)]),
        ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.0), ("b", 1.1)]),
        ("aBREAK b break c", [("aBREAK b break c", 1.0)]),
        # empty
        ("", [("", 1.0)]),
        ("()[]", [("", 1.0)]),
    ],
)
def test_parse_emphasis(text: str, pieces: list[tuple[str, float]]) -> None:
    assert parse_emphasis(text) == pieces


def test_weights_stay_finite_and_non_zero_at_absurd_strengths() -> None:
    assert parse_emphasis("(x:" + "9" * 400 + ")") == [("x", 1e6)]
    assert parse_emphasis("[" * 10_000 + "x") == [("x", 1e-6)]
    assert parse_emphasis("((x:0):" + "9" * 400 + ")") == [("x", 0.0)]


_EXPLICIT_NON_POSITIVE = re.compile(r":-|:\+?[0.]+\)")
_fragments = st.sampled_from(
    ["(", ")", "[", "]", ":", "\\", "a", " ", ",", "1.5", ":0.5)", ":2)", "BREAK", " BREAK "]
)


@given(st.text() | st.lists(_fragments, max_size=40).map("".join))
@example("(" * 500 + "x")
@example("(BRE\\AK:-1)")
def test_parse_emphasis_never_fails(text: str) -> None:
    pieces = parse_emphasis(text)
    assert pieces
    for piece, weight in pieces:
        assert isinstance(piece, str) and math.isfinite(weight)
        if piece == "BREAK" and weight == -1.0:
            continue
        # Only a weight written as zero or negative may end up there.
        assert weight > 0 or _EXPLICIT_NON_POSITIVE.search(text), (text, pieces)
    assert uses_emphasis(text) == (pieces != [(text, 1.0)])


def test_uses_emphasis() -> None:
    assert not uses_emphasis(PLAIN)
    assert not uses_emphasis("")
    assert not uses_emphasis("a cat: sitting")
    for text in ["a (cat)", "[cat]", "(cat:1.0)", "a BREAK b", "\\(cat\\)", "a \\ b"]:
        assert uses_emphasis(text), text


def test_the_module_imports_only_the_standard_library_and_torch() -> None:
    """Exported scripts embed its source verbatim."""
    tree = ast.parse(Path(prompt_weighting.__file__).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module != "__future__"
            roots.add(str(node.module).split(".")[0])
    assert roots == {"dataclasses", "math", "re", "torch", "typing"}


# --- chunks and encodings on the shipped model ------------------------------------------------


@pytest.fixture(scope="module")
def pipe() -> StableDiffusionPipeline:
    pipeline = StableDiffusionPipeline.from_pretrained(MODEL)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="module")
def parts(pipe: StableDiffusionPipeline) -> dict[str, object]:
    return {"tokenizer": pipe.tokenizer, "text_encoder": pipe.text_encoder}


def _diffusers(pipe: StableDiffusionPipeline, prompt: str, **kwargs: object) -> torch.Tensor:
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(prompt, "cpu", 1, False, **kwargs)
    return embeds


def _ids(pipe: StableDiffusionPipeline, text: str) -> list[int]:
    return pipe.tokenizer([text], add_special_tokens=False)["input_ids"][0]


def test_a_chunk_is_bos_tokens_eos_and_padding(pipe: StableDiffusionPipeline) -> None:
    [chunk] = tokenize_chunks("(red:1.5) circle", tokenizer=pipe.tokenizer)
    red, circle = _ids(pipe, "red") + _ids(pipe, "circle")
    tok = pipe.tokenizer
    assert chunk.ids == (tok.bos_token_id, red, circle, tok.eos_token_id) + (tok.pad_token_id,) * 73
    assert chunk.weights == (1.0, 1.5, 1.0) + (1.0,) * 74
    [empty] = tokenize_chunks("", tokenizer=tok)
    assert empty.ids == (tok.bos_token_id, tok.eos_token_id) + (tok.pad_token_id,) * 75


def test_a_full_chunk_moves_the_words_after_a_near_comma(pipe: StableDiffusionPipeline) -> None:
    a, b, comma = _ids(pipe, "a b ,")
    assert comma == pipe.tokenizer.get_vocab()[",</w>"]
    near = tokenize_chunks("a " * 70 + ", " + "b " * 10, tokenizer=pipe.tokenizer)
    assert [len(c.ids) for c in near] == [77, 77]
    assert near[0].ids[1:73] == (a,) * 70 + (comma, pipe.tokenizer.eos_token_id)
    assert near[1].ids[1:12] == (b,) * 10 + (pipe.tokenizer.eos_token_id,)
    far = tokenize_chunks("a " * 50 + ", " + "b " * 30, tokenizer=pipe.tokenizer)
    assert far[0].ids[1:77] == (a,) * 50 + (comma,) + (b,) * 24 + (pipe.tokenizer.eos_token_id,)
    assert far[1].ids[1:8] == (b,) * 6 + (pipe.tokenizer.eos_token_id,)


@pytest.mark.parametrize(
    ("text", "chunks"),
    [("a BREAK b", 2), ("BREAK a", 2), ("a BREAK", 1), ("a BREAK BREAK b", 3), ("BREAK", 1)],
)
def test_break_starts_a_chunk(pipe: StableDiffusionPipeline, text: str, chunks: int) -> None:
    assert len(tokenize_chunks(text, tokenizer=pipe.tokenizer)) == chunks


def test_a_plain_prompt_encodes_to_diffusers_bits(pipe, parts) -> None:
    for prompt in (PLAIN, ""):
        assert torch.equal(encode(prompt, **parts), _diffusers(pipe, prompt))


def test_clip_skip_2_is_diffusers_clip_skip_1(pipe, parts, monkeypatch) -> None:
    encoder = pipe.text_encoder
    if not hasattr(encoder, "text_model"):
        # diffusers reaches for text_model.final_layer_norm, which transformers 5 flattened
        # into the model itself; give its own code path what it looks for.
        norm = SimpleNamespace(final_layer_norm=encoder.final_layer_norm)
        monkeypatch.setattr(encoder, "text_model", norm, raising=False)
    ours = encode(PLAIN, clip_skip=2, **parts)
    assert torch.equal(ours, _diffusers(pipe, PLAIN, clip_skip=1))
    assert not torch.equal(ours, encode(PLAIN, **parts))
    monkeypatch.undo()
    assert torch.equal(encode(PLAIN, clip_skip=2, **parts), ours)


def test_clip_skip_must_name_a_layer(parts) -> None:
    # The shipped encoder has two layers: 2 is its first layer's output, 3 its embeddings.
    with pytest.raises(ValueError, match="at least that many layers"):
        encode(PLAIN, clip_skip=3, **parts)
    for wrong in (0, -1, True, 1.0):
        with pytest.raises(ValueError, match=">= 1"):
            encode(PLAIN, clip_skip=wrong, **parts)


def test_emphasis_is_a1111s_weighting_with_the_mean_restored(parts) -> None:
    plain = encode("red circle", **parts)
    weighted = encode("(red:1.5) circle", **parts)
    assert weighted.shape == plain.shape == (1, 77, 64)
    weights = torch.ones(77)
    weights[1] = 1.5
    expected = plain * weights.reshape(1, -1, 1)
    expected = expected * (plain.mean() / expected.mean())
    assert not torch.equal(weighted, plain)
    assert torch.equal(weighted, expected)


def test_long_prompts_and_breaks_add_chunks(pipe, parts) -> None:
    assert len(_ids(pipe, LONG)) > CHUNK_TOKENS
    assert encode(LONG, **parts).shape == (1, 154, 64)
    assert encode("red BREAK circle", **parts).shape == (1, 154, 64)


def test_encode_pair_pads_the_shorter_with_empty_prompt_chunks(parts) -> None:
    positive, negative = encode_pair(LONG, "blue", **parts)
    assert positive.shape == negative.shape == (1, 154, 64)
    assert torch.equal(positive, encode(LONG, **parts))
    assert torch.equal(negative[:, :77], encode("blue", **parts))
    assert torch.equal(negative[:, 77:], encode("", **parts))
    negative, positive = encode_pair("blue", LONG, **parts)
    assert torch.equal(negative[:, 77:], encode("", **parts))


def test_encoding_is_repeatable_and_follows_dtype_and_device(parts) -> None:
    first = encode("a (red:1.3) [circle] BREAK yellow", **parts)
    assert torch.equal(first, encode("a (red:1.3) [circle] BREAK yellow", **parts))
    assert first.dtype == torch.float32 and first.device.type == "cpu"
    assert not first.requires_grad
    assert encode(PLAIN, device="cpu", **parts).device.type == "cpu"
    half = copy.deepcopy(parts["text_encoder"]).to(torch.bfloat16)
    for text in (PLAIN, "a (red:1.3) circle"):
        embeds = encode(text, tokenizer=parts["tokenizer"], text_encoder=half, clip_skip=2)
        assert embeds.dtype == torch.bfloat16 and torch.isfinite(embeds).all()


def test_encode_pair_renders_a_plain_prompt_as_diffusers_does(pipe, parts) -> None:
    settings = {"height": 64, "width": 64, "num_inference_steps": 20, "guidance_scale": 2.0}

    def render(**prompts: object) -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(0)
        return pipe(**prompts, **settings, generator=generator, output_type="np").images[0]

    positive, negative = encode_pair(PLAIN, "a blue background", **parts)
    ours = render(prompt_embeds=positive, negative_prompt_embeds=negative)
    theirs = render(prompt=PLAIN, negative_prompt="a blue background")
    assert np.array_equal(ours, theirs)
