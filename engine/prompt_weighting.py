"""AUTOMATIC1111's prompt emphasis: `(word)`, `[word]`, `(word:1.5)`, `BREAK`, long prompts.

A1111 images carry prompts written for its emphasis syntax; diffusers reads the same text as
plain words and truncates it at 75 tokens. This module reproduces A1111's "Original" emphasis
(modules/prompt_parser.py `parse_prompt_attention`, modules/sd_hijack_clip.py, sd_emphasis.py)
so such prompts render as A1111 meant them, through diffusers' `prompt_embeds`:

1. parse the prompt into (text, weight) pieces;
2. tokenize each piece without special tokens and pack the tokens into chunks of 75, each
   wrapped as [BOS] + tokens + [EOS] + padding = 77 ids, one weight per id;
3. encode each chunk on its own, multiply each token's hidden state by its weight, then
   rescale the chunk so its mean equals the unweighted mean;
4. concatenate the chunks along the token axis.

Where A1111 and this module part ways, on purpose (each only for inputs A1111 mishandles):
- A number A1111's regex accepts but `float` rejects, as in `(a:1.2.3)`, makes A1111 fail; here
  it is not a weight: the colon and number stay text and `)` closes with 1.1.
- A1111 multiplies its BREAK marker by enclosing brackets, so `(a BREAK b)` turns BREAK into the
  word "BREAK" at weight -1.1; here BREAK stays a chunk break wherever it is.
- Each multiplication clamps a non-zero weight's magnitude into [1e-6, 1e6], so weights stay
  finite and never round to zero; A1111 lets them reach inf (then NaN) or 0.
- Chunks whose weights are all 1.0 skip the weighting: A1111's arithmetic there is an exact
  identity, and skipping it keeps such prompts bit-identical to diffusers' own encoder.
- The weighting runs in float32 and is cast back to the text encoder's dtype; A1111 takes the
  first mean in the encoder's dtype (float16 on most GPUs).
- Padding ids follow diffusers: the tokenizer's pad id after the chunk's EOS (SD 1.x pads with
  EOS, SD 2.x with 0). A1111 pads after the first EOS id, which differs only for SD 2.x prompts
  that contain the literal text "<|endoftext|>".
Not handled (A1111 resolves them before emphasis): prompt editing `[a:b:0.5]`, alternation
`[a|b]`, `AND`, textual-inversion embeddings, LoRA tags `<lora:...>`.

Standalone on purpose: the standard library and torch only, because exported scripts embed this
file's source verbatim. For the same reason there is no `from __future__` import, which would be
a syntax error anywhere but at the top of the script that embeds it.
"""

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import torch

PARSER = "seedbank-a1111-emphasis"
# Recipes record this: bump it whenever the same prompt could give other embeddings.
PARSER_VERSION = 1

BREAK = "BREAK"
# A1111's marker weight for BREAK; no text piece is meant to carry it.
BREAK_WEIGHT = -1.0

CHUNK_TOKENS = 75  # ids per chunk between BOS and EOS (CLIP's 77 positions less two)
# A1111's comma_padding_backtrack default: a full chunk moves the words after its last comma to
# the next chunk when that comma is at most this many tokens from the end.
COMMA_BACKTRACK = 20

_ROUND = 1.1
_SQUARE = 1 / 1.1
_WEIGHT_MIN = 1e-6
_WEIGHT_MAX = 1e6

# One alternative per kind of lexeme, in A1111's order (it decides what a `\` or `:` means).
_LEXEME = re.compile(
    r"""
      \\(?P<escaped>[()\[\]\\])                      # \( \) \[ \] \\ : that character
    | (?P<stray>\\)                                  # any other backslash: dropped, as in A1111
    | (?P<open>[(\[])
    | :(?P<weight>[+-]?(?:\d+\.?\d*|\.\d+))\)        # (text:1.5)
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+|:)
    """,
    re.VERBOSE,
)
_BREAK_SPLIT = re.compile(r"\s*\bBREAK\b\s*", re.S)


class Tokenizer(Protocol):
    """What `encode` needs of a tokenizer (transformers' CLIPTokenizer and its fast twin)."""

    bos_token_id: Any
    eos_token_id: Any
    pad_token_id: Any

    def __call__(self, text: list[str], *, add_special_tokens: bool, verbose: bool) -> Any: ...


class TextEncoder(Protocol):
    """What `encode` needs of a text encoder (transformers' CLIPTextModel): for clip_skip > 1
    also `final_layer_norm`, on itself (transformers 5) or on its `text_model` (4.x)."""

    @property
    def dtype(self) -> torch.dtype: ...

    @property
    def device(self) -> torch.device: ...

    def __call__(self, input_ids: torch.Tensor, *, output_hidden_states: bool) -> Any: ...


@dataclass(frozen=True)
class PromptChunk:
    """77 token ids (BOS, up to 75 prompt tokens, EOS, padding) and one weight per id."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]


def _bounded(weight: float) -> float:
    if weight == 0.0:
        return 0.0
    magnitude = min(max(abs(weight), _WEIGHT_MIN), _WEIGHT_MAX)
    return math.copysign(magnitude, weight)


def parse_emphasis(text: str) -> list[tuple[str, float]]:
    """(text, weight) pieces of an A1111 prompt; a BREAK is ("BREAK", -1.0). Never raises.

    `(x)` multiplies by 1.1, `[x]` divides by 1.1, `(x:w)` multiplies by w, nesting multiplies;
    `\\(` `\\)` `\\[` `\\]` `\\\\` are the literal characters and any other backslash is dropped;
    a bracket never closed applies to the end of the prompt; a `)` or `]` with nothing to close
    is text. Neighbouring pieces of equal weight merge, so a prompt without emphasis is one
    piece at 1.0; an empty prompt is [("", 1.0)].

    >>> parse_emphasis("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")[:3]
    [('a ', 1.0), ('house', 1.5730000000000004), (' ', 1.1)]
    """
    # [text, weight, is_break]; lists because enclosing brackets multiply weights in place.
    pieces: list[list[Any]] = []
    round_opened: list[int] = []
    square_opened: list[int] = []

    def multiply_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] = _bounded(piece[1] * factor)

    for match in _LEXEME.finditer(text):
        lexeme = match.group(0)
        if match.group("escaped") is not None:
            pieces.append([match.group("escaped"), 1.0, False])
        elif match.group("stray") is not None:
            # An empty piece, not nothing: like A1111's, it can keep its neighbours from merging.
            pieces.append(["", 1.0, False])
        elif lexeme == "(":
            round_opened.append(len(pieces))
        elif lexeme == "[":
            square_opened.append(len(pieces))
        elif match.group("weight") is not None and round_opened:
            multiply_from(round_opened.pop(), _bounded(float(match.group("weight"))))
        elif lexeme == ")" and round_opened:
            multiply_from(round_opened.pop(), _ROUND)
        elif lexeme == "]" and square_opened:
            multiply_from(square_opened.pop(), _SQUARE)
        else:
            for index, part in enumerate(_BREAK_SPLIT.split(lexeme)):
                if index:
                    pieces.append([BREAK, BREAK_WEIGHT, True])
                pieces.append([part, 1.0, False])

    # A1111's order (round, then square, innermost last): float products depend on it.
    for start in round_opened:
        multiply_from(start, _ROUND)
    for start in square_opened:
        multiply_from(start, _SQUARE)

    merged: list[list[Any]] = []
    for piece in pieces:
        previous = merged[-1] if merged else None
        if previous and not previous[2] and not piece[2] and previous[1] == piece[1]:
            previous[0] += piece[0]
        else:
            merged.append(piece)
    if not merged:
        return [("", 1.0)]
    return [(piece_text, float(weight)) for piece_text, weight, _ in merged]


def uses_emphasis(text: str) -> bool:
    """Whether `text` means something else to A1111 than its plain words at weight 1.0.

    False means diffusers' own encoder gives the same embeddings, provided the prompt fits in
    75 tokens: diffusers truncates longer prompts where A1111 (and `encode`) adds chunks.
    """
    return parse_emphasis(text) != [(text, 1.0)]


def _comma_id(tokenizer: Tokenizer) -> int | None:
    ids = tokenizer([","], add_special_tokens=False, verbose=False)["input_ids"][0]
    return int(ids[0]) if len(ids) == 1 else None


def tokenize_chunks(text: str, *, tokenizer: Tokenizer) -> list[PromptChunk]:
    """The prompt's chunks as A1111 packs them; at least one, even for an empty prompt.

    A BREAK closes the current chunk even when it is empty (so a leading BREAK gives an empty
    first chunk) and a trailing BREAK adds nothing. When a chunk is full and a comma lies within
    its last COMMA_BACKTRACK tokens, the tokens after that comma move to the next chunk. As in
    A1111, a comma that arrives exactly when a chunk is full opens the next chunk and is not
    remembered as a backtrack point there.
    """
    pieces = parse_emphasis(text)
    words = [piece[0] for piece in pieces if not _is_break(piece)]
    # Only `(BRE\AK:-1)`-like prompts leave no words; some tokenizers reject an empty batch.
    # verbose=False: pieces longer than 77 tokens are expected here, not a truncation to warn of.
    found = tokenizer(words, add_special_tokens=False, verbose=False)["input_ids"] if words else []
    tokenized = iter(found)
    comma = _comma_id(tokenizer)
    bos, eos = int(tokenizer.bos_token_id), int(tokenizer.eos_token_id)
    pad = eos if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)

    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close_chunk() -> None:
        nonlocal ids, weights, last_comma
        padding = CHUNK_TOKENS - len(ids)
        chunks.append(
            PromptChunk(
                ids=(bos, *ids, eos, *[pad] * padding),
                weights=(1.0, *weights, 1.0, *[1.0] * padding),
            )
        )
        ids, weights, last_comma = [], [], -1

    for piece in pieces:
        if _is_break(piece):
            close_chunk()
            continue
        weight = piece[1]
        for token in next(tokenized):
            if token == comma:
                last_comma = len(ids)
            elif (
                len(ids) == CHUNK_TOKENS
                and last_comma != -1
                and CHUNK_TOKENS - last_comma <= COMMA_BACKTRACK
            ):
                cut = last_comma + 1
                moved_ids, moved_weights = ids[cut:], weights[cut:]
                ids, weights = ids[:cut], weights[:cut]
                close_chunk()
                ids, weights = moved_ids, moved_weights
            if len(ids) == CHUNK_TOKENS:
                close_chunk()
            ids.append(int(token))
            weights.append(weight)
    if ids or not chunks:
        close_chunk()
    return chunks


def _is_break(piece: tuple[str, float]) -> bool:
    # The same test as A1111's: a text piece "BREAK" at -1.0 (only `(BRE\AK:-1)` makes one)
    # is a break there too.
    return piece[0] == BREAK and piece[1] == BREAK_WEIGHT


def _encode_chunk(chunk: PromptChunk, text_encoder: TextEncoder, clip_skip: int) -> torch.Tensor:
    ids = torch.tensor([chunk.ids], dtype=torch.long, device=text_encoder.device)
    with torch.no_grad():
        output = text_encoder(ids, output_hidden_states=True)
        if clip_skip == 1:
            hidden = output.last_hidden_state
        else:
            # hidden_states holds the embeddings, then each layer's output: A1111's deepest
            # setting is the first layer's output.
            layers = len(output.hidden_states) - 1
            if clip_skip > layers:
                raise ValueError(
                    f"clip_skip {clip_skip} needs a text encoder of at least that many layers; "
                    f"this one has {layers}"
                )
            # transformers 5 flattened CLIPTextModel; older versions keep the norm in text_model.
            owner: Any = getattr(text_encoder, "text_model", text_encoder)
            norm = owner.final_layer_norm
            # As A1111 and diffusers do: an inner layer's states still pass the final norm.
            hidden = norm(output.hidden_states[-clip_skip])
        if all(weight == 1.0 for weight in chunk.weights):
            return hidden
        states = hidden.float()
        weights = torch.tensor(chunk.weights, dtype=torch.float32, device=states.device)
        original_mean = states.mean()
        weighted = states * weights.reshape(1, -1, 1)
        # A1111 restores the unweighted mean so emphasis moves directions, not overall scale.
        # Where the weighted mean is 0 A1111 divides by zero and renders NaN (black); here the
        # chunk then stays unscaled. Real CLIP states never have a zero mean; random ones can.
        ratio = original_mean / weighted.mean()
        if torch.isfinite(ratio):
            weighted = weighted * ratio
        return weighted.to(hidden.dtype)


def _encode_chunks(
    chunks: list[PromptChunk],
    text_encoder: TextEncoder,
    clip_skip: int,
    device: torch.device | str | None,
) -> torch.Tensor:
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 1:
        raise ValueError(f"clip_skip must be an integer >= 1 (A1111's meaning), not {clip_skip!r}")
    # One chunk per forward pass, as diffusers encodes one prompt: batch size can move bits.
    states = torch.cat([_encode_chunk(c, text_encoder, clip_skip) for c in chunks], dim=1)
    return states.to(dtype=text_encoder.dtype, device=states.device if device is None else device)


def encode(
    text: str,
    *,
    tokenizer: Tokenizer,
    text_encoder: TextEncoder,
    clip_skip: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A1111's conditioning for `text`: shape [1, 77 * chunks, hidden], the encoder's dtype.

    clip_skip is A1111's "Clip skip": 1 takes the last layer, n > 1 the n-th hidden state from
    the end through the final layer norm (diffusers' `clip_skip=n - 1`). The encoder runs on its
    own device; the result moves to `device` when one is given.
    """
    return _encode_chunks(
        tokenize_chunks(text, tokenizer=tokenizer), text_encoder, clip_skip, device
    )


def encode_pair(
    prompt: str,
    negative_prompt: str,
    *,
    tokenizer: Tokenizer,
    text_encoder: TextEncoder,
    clip_skip: int = 1,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt and negative prompt embeddings of equal length, for diffusers' `prompt_embeds`
    and `negative_prompt_embeds`.

    The shorter one is padded with chunks of the empty prompt's encoding, as A1111 does with
    "Pad conds" on (diffusers needs equal shapes). Without that setting A1111 runs cond and
    uncond through the UNet separately when their lengths differ, which diffusers cannot.
    Unlike diffusers' pipeline, whose `clip_skip` reaches only the prompt, the negative prompt
    takes the same clip_skip, as in A1111.
    """
    chunks = [tokenize_chunks(text, tokenizer=tokenizer) for text in (prompt, negative_prompt)]
    length = max(len(c) for c in chunks)
    empty = tokenize_chunks("", tokenizer=tokenizer)[0]
    padded = [c + [empty] * (length - len(c)) for c in chunks]
    positive, negative = (_encode_chunks(c, text_encoder, clip_skip, device) for c in padded)
    return positive, negative
