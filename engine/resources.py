"""Identity and inspection of add-on resources: LoRAs, textual-inversion embeddings, VAEs.

Django-free and light (stdlib only; torch is imported inside `inspect_embedding`, and only for
pickled embeddings): the site checks an upload before any worker loads it.

Identity follows what peers write, so a recipe can name a resource the way A1111 and Civitai do:
- AutoV2 (A1111's "Model hash", Civitai's AutoV2): the first 10 hex digits of the file's sha256.
- kohya's "addnet" hash (A1111's "Lora hashes", first 12 hex): the sha256 of a .safetensors
  file's bytes after its header, so editing the metadata does not change it.
- AIR, Civitai's "AI Resource" name: urn:air:{ecosystem}:{type}:{source}:{id}[@{version}].

Inspection reads only the safetensors header (no tensor data) and refuses with a reason people
can act on: a LoRA kind diffusers cannot apply, a pickle, keys nobody recognises. A key is
either understood or the file is refused; none is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
# The safetensors format caps its own header at 100 MB; a larger claim is a hostile or broken
# file, and reading it would cost that much memory before any check.
MAX_HEADER_BYTES = 100_000_000
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
_SHOWN_KEYS = 5  # unknown keys quoted in a refusal


class ResourceError(ValueError):
    """A resource file that Seedbank will not use, with the reason in words."""


# --- identity -------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """sha256 of the whole file, read in chunks (checkpoints are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# Digests of files as they are now, per (path, size, mtime): like engine.weights.files_digest
# for folders, a LoRA is hashed again only when it changed on disk.
_file_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str | None:
    """sha256 of a file as it is now (remembered per size and mtime); None when missing."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _file_digests:
        _file_digests[key] = file_sha256(path)
    return _file_digests[key]


def autov2(sha256_hex: str) -> str:
    """A1111's model hash and Civitai's AutoV2: the sha256's first 10 hex digits."""
    return _hex_prefix(sha256_hex, 10)


def addnet_sha256(path: Path) -> str:
    """kohya's addnet hash: sha256 of the bytes after a .safetensors file's header."""
    path = Path(path)
    with path.open("rb") as handle:
        length = _header_length(handle.read(8), path.stat().st_size, path.name)
        handle.seek(8 + length)
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def addnet_short(sha256_hex: str) -> str:
    """The form A1111 writes in "Lora hashes": the addnet hash's first 12 hex digits."""
    return _hex_prefix(sha256_hex, 12)


def _hex_prefix(sha256_hex: str, digits: int) -> str:
    text = sha256_hex.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ResourceError(f"{sha256_hex!r} is not a sha256 (64 hex digits).")
    return text[:digits]


# --- safetensors header ---------------------------------------------------------------------


def safetensors_header(path: Path) -> dict[str, Any]:
    """{"tensors": {name: {"dtype", "shape"}}, "metadata": {str: str}} from a safetensors file.

    Only the header is read; every bound is checked against the file before trusting it.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        length = _header_length(handle.read(8), size, path.name)
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResourceError(f"{path.name}: the safetensors header is not JSON ({error}).") from None
    if not isinstance(header, dict):
        raise ResourceError(f"{path.name}: the safetensors header is not a JSON object.")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ResourceError(f"{path.name}: the safetensors metadata is not a text-to-text map.")
    data_bytes = size - 8 - length
    tensors = {
        name: _tensor_entry(path.name, name, entry, data_bytes) for name, entry in header.items()
    }
    return {"tensors": tensors, "metadata": metadata}


def _header_length(prefix: bytes, size: int, name: str) -> int:
    if len(prefix) < 8:
        raise ResourceError(f"{name} is too short to be a safetensors file.")
    (length,) = struct.unpack("<Q", prefix)
    if length > MAX_HEADER_BYTES:
        raise ResourceError(
            f"{name}: its safetensors header claims {length:,} bytes (the format allows "
            f"{MAX_HEADER_BYTES:,}); the file is broken or not safetensors."
        )
    if 8 + length > size:
        raise ResourceError(
            f"{name}: its safetensors header claims {length:,} bytes but the file has only "
            f"{size - 8:,} after the length; the file is truncated or not safetensors."
        )
    return int(length)


def _tensor_entry(file: str, name: str, entry: object, data_bytes: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ResourceError(f"{file}: tensor {name!r} has no description in the header.")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _DTYPE_BYTES:
        raise ResourceError(f"{file}: tensor {name!r} has an unknown dtype {dtype!r}.")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise ResourceError(f"{file}: tensor {name!r} has a malformed shape {shape!r}.")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_bytes
    ):
        raise ResourceError(
            f"{file}: tensor {name!r} lies outside the file's {data_bytes:,} data bytes "
            f"({offsets!r}); the file is truncated or corrupt."
        )
    count = 1
    for n in shape:
        count *= n
    if offsets[1] - offsets[0] != count * _DTYPE_BYTES[dtype]:
        raise ResourceError(f"{file}: tensor {name!r} has {offsets[1] - offsets[0]} bytes, "
                            f"not the {count * _DTYPE_BYTES[dtype]} its shape needs.")  # fmt: skip
    return {"dtype": dtype, "shape": list(shape)}


def _tensors_of(path: Path, what: str) -> dict[str, dict[str, Any]]:
    """The header's tensors of a file that must be .safetensors (pickles are refused)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        raise ResourceError(
            f"{path.name} is a pickled {what} ({suffix}); loading a pickle can run code hidden "
            "in it. Convert it to .safetensors (or get the .safetensors release) and add that."
        )
    if suffix != ".safetensors":
        raise ResourceError(f"{path.name} is not a .safetensors file; a {what} must be one.")
    tensors: dict[str, dict[str, Any]] = safetensors_header(path)["tensors"]
    if not tensors:
        raise ResourceError(f"{path.name} holds no tensors.")
    return tensors


def _unknown(path: Path, what: str, keys: list[str]) -> ResourceError:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return ResourceError(f"{Path(path).name}: keys that are not {what} keys: {shown}{more}.")


# --- AIR names ------------------------------------------------------------------------------

AIR_KINDS = (
    "checkpoint", "model", "lora", "lycoris", "dora", "locon", "embedding", "hypernet", "vae",
    "controlnet", "upscaler", "motion", "wildcards", "workflow", "other",
)  # fmt: skip
_AIR_PART = {
    "ecosystem": r"[a-z0-9][a-z0-9_.-]*",
    "kind": r"[a-z][a-z0-9_-]*",
    "source": r"[a-z0-9][a-z0-9_.-]*",
    # Hugging Face ids carry their owner: urn:air:sdxl:vae:huggingface:stabilityai/sdxl-vae
    "id": r"[A-Za-z0-9][A-Za-z0-9_.~/-]*",
    "version": r"[A-Za-z0-9][A-Za-z0-9_.~-]*",
}
_AIR = re.compile(
    r"urn:air:(?P<ecosystem>{ecosystem}):(?P<kind>{kind}):(?P<source>{source}):(?P<id>{id})"
    r"(?:@(?P<version>{version}))?".format(**_AIR_PART)
)


@dataclass(frozen=True)
class Air:
    ecosystem: str  # sd1, sdxl, flux1, …
    kind: str  # the URN's {type}: lora, vae, embedding, …
    source: str  # civitai, huggingface, seedbank, …
    id: str
    version: str = ""

    def __str__(self) -> str:
        return air_urn(ecosystem=self.ecosystem, kind=self.kind, source=self.source,
                       id=self.id, version=self.version)  # fmt: skip


def air_urn(*, ecosystem: str, kind: str, source: str, id: str, version: str = "") -> str:
    """urn:air:{ecosystem}:{type}:{source}:{id}[@{version}], each part checked."""
    parts = {"ecosystem": ecosystem, "kind": kind, "source": source, "id": id}
    if version:
        parts["version"] = version
    for part, value in parts.items():
        if not re.fullmatch(_AIR_PART[part], value):
            raise ResourceError(f"{value!r} cannot be an AIR {part}.")
    if kind not in AIR_KINDS:
        raise ResourceError(f"{kind!r} is not an AIR type; use one of {', '.join(AIR_KINDS)}.")
    name = f"urn:air:{ecosystem}:{kind}:{source}:{id}"
    return f"{name}@{version}" if version else name


def parse_air(text: str) -> Air:
    """The parts of an AIR name; ResourceError unless the whole text is one."""
    match = _AIR.fullmatch(text.strip())
    if match is None:
        raise ResourceError(
            f"{text!r} is not an AIR name (urn:air:{{ecosystem}}:{{type}}:{{source}}:{{id}}"
            "[@{version}], e.g. urn:air:sd1:lora:civitai:82098@87153)."
        )
    air = Air(**{k: v or "" for k, v in match.groupdict().items()})
    if air.kind not in AIR_KINDS:
        raise ResourceError(f"{air.kind!r} is not an AIR type; use one of {', '.join(AIR_KINDS)}.")
    return air


# --- LoRA -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraFile:
    format: str  # "peft" (diffusers today), "kohya" (A1111, Civitai), "diffusers-old"
    tensors: int
    targets: tuple[str, ...]  # "unet", "text_encoder", "text_encoder_2" (SDXL's second)
    ranks: tuple[int, ...]  # every rank it uses, ascending
    dora: bool = False  # weight-decomposed (DoRA): a magnitude per output as well


# LoRA kinds diffusers cannot apply, by a key fragment that only they use.
_UNSUPPORTED = (
    ("hada_", "a LoHa (LyCORIS Hadamard product)"),
    ("lokr_", "a LoKr (LyCORIS Kronecker product)"),
    ("ia3_", "an (IA)³ adapter"),
    (".on_input", "an (IA)³ adapter"),
    (".lora_mid.", "a Tucker-decomposed LoCon (lora_mid)"),
)
_PEFT = re.compile(
    r"(?P<part>unet|text_encoder|text_encoder_2)\.(?P<module>.+)"
    r"\.(?:(?P<factor>lora_A|lora_B)\.weight|(?P<bias>lora_B\.bias)"
    r"|(?P<dora>lora_magnitude_vector))"
)
_KOHYA = re.compile(
    r"(?P<part>lora_unet|lora_te|lora_te1|lora_te2)_(?P<module>[A-Za-z0-9_]+)"
    r"\.(?:(?P<factor>lora_down|lora_up)\.weight|(?P<alpha>alpha)|(?P<dora>dora_scale))"
)
# Attention processors' LoRA (diffusers before peft), with or without the component prefix.
_OLD = re.compile(
    r"(?:(?P<part>unet|text_encoder|text_encoder_2)\.)?(?P<module>.+?)"
    r"\.(?:(?:to_q_lora|to_k_lora|to_v_lora|to_out_lora|lora_linear_layer|lora)"
    r"\.(?P<factor>down|up)\.weight|(?P<alpha>alpha))"
)
_PART_TARGET = {
    None: "unet", "unet": "unet", "lora_unet": "unet",
    "text_encoder": "text_encoder", "lora_te": "text_encoder", "lora_te1": "text_encoder",
    "text_encoder_2": "text_encoder_2", "lora_te2": "text_encoder_2",
}  # fmt: skip
_DOWN = {"lora_A", "lora_down", "down"}


def inspect_lora(path: Path) -> LoraFile:
    """What a LoRA file holds; ResourceError for a kind or key diffusers would not apply."""
    tensors = _tensors_of(path, "LoRA")
    names = sorted(tensors)
    for fragment, kind in _UNSUPPORTED:
        if any(fragment in name for name in names):
            raise ResourceError(
                f"{Path(path).name} is {kind}, which Seedbank cannot apply; only LoRA (LoCon, "
                "DoRA) files in diffusers/peft or kohya (A1111) layout are supported."
            )
    for layout, pattern in (("peft", _PEFT), ("kohya", _KOHYA), ("diffusers-old", _OLD)):
        matched = {name: pattern.fullmatch(name) for name in names}
        matches = {name: match for name, match in matched.items() if match is not None}
        if matches:
            unknown = [name for name in names if name not in matches]
            if unknown:
                raise _unknown(path, f"{layout} LoRA", unknown)
            return _lora_file(Path(path), layout, tensors, matches)
    raise _unknown(path, "LoRA", names)


def _lora_file(
    path: Path, layout: str, tensors: dict[str, dict[str, Any]], matches: dict[str, re.Match[str]]
) -> LoraFile:
    factors: dict[tuple[str | None, str], dict[bool, list[int]]] = {}
    for name, match in matches.items():
        if match.groupdict().get("factor"):
            pair = factors.setdefault((match["part"], match["module"]), {})
            pair[match["factor"] in _DOWN] = tensors[name]["shape"]
    # An alpha, bias or magnitude of a layer without factors would be dropped by any loader.
    orphans = [name for name, m in matches.items() if (m["part"], m["module"]) not in factors]
    if orphans:
        raise ResourceError(f"{path.name}: keys of layers with no LoRA factors: "
                            f"{', '.join(orphans[:_SHOWN_KEYS])}.")  # fmt: skip
    ranks = set()
    for (part, module), pair in sorted(factors.items(), key=lambda item: str(item[0])):
        where = f"{part}.{module}" if part else module
        if len(pair) != 2:
            missing = "up (B)" if True in pair else "down (A)"
            raise ResourceError(f"{path.name}: {where} lacks its {missing} factor.")
        down, up = pair[True], pair[False]
        if len(down) < 2 or len(up) < 2 or up[1] != down[0]:
            raise ResourceError(
                f"{path.name}: {where} has factors of shapes {down} and {up}, which do not chain."
            )
        ranks.add(down[0])
    if not factors:
        raise ResourceError(f"{path.name} holds no LoRA factors.")
    targets = {_PART_TARGET[match["part"]] for match in matches.values()}
    dora = any(match.groupdict().get("dora") for match in matches.values())
    order = ("unet", "text_encoder", "text_encoder_2")
    return LoraFile(layout, len(tensors), tuple(t for t in order if t in targets),
                    tuple(sorted(ranks)), dora)  # fmt: skip


# --- textual-inversion embeddings -----------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingFile:
    format: str  # "a1111-safetensors", "a1111-pt", "diffusers", "sdxl"
    vectors: int  # tokens the embedding stands for in a prompt
    dim: int  # width of the (first) text encoder's token embedding
    dim_2: int = 0  # SDXL: width of the second text encoder's (0 when there is none)


def inspect_embedding(path: Path) -> EmbeddingFile:
    """What a textual-inversion embedding holds; ResourceError unless it is one we can use.

    A1111's .pt embeddings are pickles; they are read with torch's weights-only loader, which
    refuses anything but tensors and plain containers.
    """
    path = Path(path)
    if path.suffix.lower() in (".pt", ".bin"):
        return _pickled_embedding(path)
    shapes = {name: entry["shape"] for name, entry in _tensors_of(path, "embedding").items()}
    if set(shapes) == {"clip_l", "clip_g"}:
        (n, dim), (n_2, dim_2) = _matrix(path, shapes["clip_l"]), _matrix(path, shapes["clip_g"])
        if n != n_2:
            raise ResourceError(f"{path.name}: clip_l has {n} vectors but clip_g has {n_2}.")
        return EmbeddingFile("sdxl", n, dim, dim_2)
    if set(shapes) == {"emb_params"}:
        return EmbeddingFile("a1111-safetensors", *_matrix(path, shapes["emb_params"]))
    if len(shapes) == 1:
        ((_token, shape),) = shapes.items()
        return EmbeddingFile("diffusers", *_matrix(path, shape))
    raise _unknown(path, "embedding (emb_params, clip_l/clip_g, or one token's)", sorted(shapes))


def _pickled_embedding(path: Path) -> EmbeddingFile:
    import pickle

    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise ResourceError(
            f"{path.name} is not a plain-tensor embedding pickle ({error}); "
            "convert it to .safetensors."
        ) from None
    if not isinstance(data, dict):
        raise ResourceError(f"{path.name} does not hold an embedding (a {type(data).__name__}).")
    if "string_to_param" in data:
        params = data["string_to_param"]
        if not isinstance(params, dict) or len(params) != 1:
            raise ResourceError(f"{path.name}: string_to_param should hold one tensor.")
        (tensor,) = params.values()
        return EmbeddingFile("a1111-pt", *_matrix(path, list(getattr(tensor, "shape", []))))
    if len(data) == 1:
        ((_token, tensor),) = data.items()
        if isinstance(tensor, torch.Tensor):
            return EmbeddingFile("diffusers", *_matrix(path, list(tensor.shape)))
    raise _unknown(path, "embedding (string_to_param, or one token's)", sorted(map(str, data)))


def _matrix(path: Path, shape: list[int]) -> tuple[int, int]:
    """(vectors, width) of an embedding tensor: one vector (dim,) or several (n, dim)."""
    if len(shape) == 1:
        shape = [1, *shape]
    if len(shape) != 2 or min(shape) < 1:
        raise ResourceError(f"{path.name}: an embedding tensor of shape {shape} is not vectors.")
    return shape[0], shape[1]


# --- VAE ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaeFile:
    format: str  # "diffusers" (down_blocks/up_blocks) or "ldm" (A1111's down/up/mid.block_1)
    tensors: int


_VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_LDM_BLOCKS = re.compile(r"(?:encoder|decoder)\.(?:down|up|mid)\.")
_DIFFUSERS_BLOCKS = re.compile(r"(?:encoder|decoder)\.(?:down_blocks|up_blocks|mid_block)\.")


def inspect_vae(path: Path) -> VaeFile:
    """Which layout a VAE weights file uses; ResourceError unless it is an SD-style VAE."""
    names = sorted(_tensors_of(path, "VAE"))
    unknown = [name for name in names if not name.startswith(_VAE_PARTS)]
    if unknown:
        raise _unknown(path, "VAE (encoder., decoder., quant_conv., post_quant_conv.)", unknown)
    ldm = any(_LDM_BLOCKS.match(name) for name in names)
    diffusers = any(_DIFFUSERS_BLOCKS.match(name) for name in names)
    if ldm == diffusers:
        which = "both layouts' block names" if ldm else "no encoder or decoder blocks"
        raise ResourceError(f"{Path(path).name} is not a VAE we can load: it has {which}.")
    return VaeFile("ldm" if ldm else "diffusers", len(names))
