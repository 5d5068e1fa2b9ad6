"""Resource identity (sha256, AutoV2, addnet, AIR) and inspection of LoRA, embedding, VAE files."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from engine import resources
from engine.resources import ResourceError

MODELS = Path(__file__).resolve().parents[2] / "models"


def _save(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None):
    tensors = {
        name: np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        for name, shape in shapes.items()
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def _raw(path: Path, header: bytes, data: bytes = b"", *, length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


# --- identity -------------------------------------------------------------------------------


def test_file_sha256_and_autov2(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"seedbank" * 300_000)  # more than one read chunk
    sha = resources.file_sha256(path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert resources.autov2(sha) == sha[:10]
    assert resources.autov2(sha.upper()) == sha[:10]
    with pytest.raises(ResourceError):
        resources.autov2("not-a-hash")


def test_addnet_hash_skips_the_header_so_metadata_edits_keep_it(tmp_path: Path) -> None:
    plain = _save(tmp_path / "a.safetensors", {"w": (4, 4)})
    tagged = _save(tmp_path / "b.safetensors", {"w": (4, 4)}, {"ss_output_name": "mine"})
    assert resources.file_sha256(plain) != resources.file_sha256(tagged)
    addnet = resources.addnet_sha256(plain)
    assert addnet == resources.addnet_sha256(tagged)
    raw = plain.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert addnet == hashlib.sha256(raw[8 + length :]).hexdigest()
    assert resources.addnet_short(addnet) == addnet[:12]


# --- safetensors header ---------------------------------------------------------------------


def test_header_lists_tensors_and_metadata(tmp_path: Path) -> None:
    path = _save(tmp_path / "m.safetensors", {"a": (2, 3), "b": (5,)}, {"k": "v"})
    header = resources.safetensors_header(path)
    assert header == {
        "tensors": {"a": {"dtype": "F32", "shape": [2, 3]}, "b": {"dtype": "F32", "shape": [5]}},
        "metadata": {"k": "v"},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (struct.pack("<Q", 2**40) + b"{}", "claims"),  # a huge header length
        (struct.pack("<Q", 1000) + b"{}", "truncated"),  # longer than the file
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 5) + b"hello", "not JSON"),
        (struct.pack("<Q", 2) + b"\xff\xfe", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_hostile_headers_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ResourceError, match=message):
        resources.safetensors_header(path)
    with pytest.raises(ResourceError):
        resources.inspect_lora(path)


def test_huge_header_claim_is_refused_before_reading(tmp_path: Path) -> None:
    path = _raw(tmp_path / "h.safetensors", b"{}", length=resources.MAX_HEADER_BYTES + 1)
    with pytest.raises(ResourceError, match="claims"):
        resources.addnet_sha256(path)


def test_truncated_tensor_data_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.safetensors", {"w": (16, 16)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ResourceError, match="truncated"):
        resources.safetensors_header(path)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]},  # 4 bytes for 2 floats
        {"dtype": "NOPE", "shape": [1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]},
        {"dtype": "F32", "shape": [1]},
        "not a dict",
    ],
)
def test_malformed_tensor_entries_are_refused(tmp_path: Path, entry: object) -> None:
    path = _raw(tmp_path / "e.safetensors", json.dumps({"w": entry}).encode(), b"\0" * 8)
    with pytest.raises(ResourceError):
        resources.safetensors_header(path)


def test_metadata_must_be_text(tmp_path: Path) -> None:
    header = {"__metadata__": {"n": 1}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    path = _raw(tmp_path / "m.safetensors", json.dumps(header).encode(), b"\0" * 4)
    with pytest.raises(ResourceError, match="metadata"):
        resources.safetensors_header(path)


# --- AIR ------------------------------------------------------------------------------------


def test_air_round_trip() -> None:
    urn = resources.air_urn(ecosystem="sd1", kind="lora", source="civitai", id="82098",
                            version="87153")  # fmt: skip
    assert urn == "urn:air:sd1:lora:civitai:82098@87153"
    air = resources.parse_air(urn)
    assert air == resources.Air("sd1", "lora", "civitai", "82098", "87153")
    assert str(air) == urn
    hub = resources.parse_air("urn:air:sdxl:vae:huggingface:stabilityai/sdxl-vae")
    assert (hub.id, hub.version) == ("stabilityai/sdxl-vae", "")
    assert resources.air_urn(ecosystem="sd1", kind="vae", source="seedbank", id="x") == (
        "urn:air:sd1:vae:seedbank:x"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "urn:air:sd1:lora:civitai",  # no id
        "urn:air:sd1:lora:civitai:",
        "urn:air:sd1:lora:civitai:123@",  # empty version
        "urn:air:sd1:spaceship:civitai:123",  # unknown type
        "urn:air:sd1:lora:civitai:12 3",
        "urn:air:SD1:lora:civitai:123",
        "urn:x:sd1:lora:civitai:123",
        "urn:air:sd1:lora:civitai:1@2@3",
        "<lora:civitai:1>",
    ],
)
def test_malformed_air_is_refused(text: str) -> None:
    with pytest.raises(ResourceError):
        resources.parse_air(text)


def test_air_urn_checks_its_parts() -> None:
    with pytest.raises(ResourceError):
        resources.air_urn(ecosystem="sd1", kind="lora", source="civitai", id="a:b")
    with pytest.raises(ResourceError):
        resources.air_urn(ecosystem="sd1", kind="sampler", source="civitai", id="1")


# --- LoRA -----------------------------------------------------------------------------------


def test_peft_lora(tmp_path: Path) -> None:
    path = _save(tmp_path / "p.safetensors", {
        "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": (4, 32, 1, 1),
        "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": (32, 4, 1, 1),
        "unet.mid_block.attn1.to_q.lora_A.weight": (8, 64),
        "unet.mid_block.attn1.to_q.lora_B.weight": (64, 8),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": (4, 32),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": (32, 4),
    })  # fmt: skip
    assert resources.inspect_lora(path) == resources.LoraFile(
        "peft", 6, ("unet", "text_encoder"), (4, 8)
    )


def test_kohya_lora_with_alphas_locon_and_sdxl_encoders(tmp_path: Path) -> None:
    path = _save(tmp_path / "k.safetensors", {
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": (16, 32, 3, 3),
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": (32, 16, 1, 1),
        "lora_unet_down_blocks_0_resnets_0_conv1.alpha": (),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (16, 64),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": (128, 16),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha": (),
    })  # fmt: skip
    lora = resources.inspect_lora(path)
    assert lora == resources.LoraFile("kohya", 6, ("unet", "text_encoder_2"), (16,))


def test_kohya_dora(tmp_path: Path) -> None:
    path = _save(tmp_path / "d.safetensors", {
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 64),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": (128, 4),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.dora_scale": (1, 64),
    })  # fmt: skip
    lora = resources.inspect_lora(path)
    assert (lora.format, lora.targets, lora.dora) == ("kohya", ("text_encoder",), True)


def test_old_diffusers_lora(tmp_path: Path) -> None:
    prefix = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor"
    path = _save(tmp_path / "o.safetensors", {
        f"{prefix}.to_q_lora.down.weight": (4, 64),
        f"{prefix}.to_q_lora.up.weight": (64, 4),
        f"{prefix}.to_out_lora.down.weight": (4, 64),
        f"{prefix}.to_out_lora.up.weight": (64, 4),
    })  # fmt: skip
    assert resources.inspect_lora(path) == resources.LoraFile("diffusers-old", 4, ("unet",), (4,))


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", "LoHa"),
        ("lora_unet_mid_block_attentions_0_proj_in.lokr_w1", "LoKr"),
        ("unet.mid_block.attn1.to_q.ia3_l", "IA"),
        ("lora_unet_mid_block_attentions_0_proj_in.on_input", "IA"),
        ("lora_unet_mid_block_resnets_0_conv1.lora_mid.weight", "Tucker"),
    ],
)
def test_lora_kinds_diffusers_cannot_apply_are_refused(tmp_path: Path, key: str, kind: str) -> None:
    path = _save(tmp_path / "x.safetensors", {key: (4, 4)})
    with pytest.raises(ResourceError, match=kind):
        resources.inspect_lora(path)


def test_unknown_keys_are_named_not_skipped(tmp_path: Path) -> None:
    path = _save(tmp_path / "u.safetensors", {
        "unet.mid_block.attn1.to_q.lora_A.weight": (4, 64),
        "unet.mid_block.attn1.to_q.lora_B.weight": (64, 4),
        "unet.mid_block.attn1.to_q.weight": (64, 64),
        "secret_sauce": (3,),
    })  # fmt: skip
    with pytest.raises(ResourceError, match=r"secret_sauce.*to_q\.weight|to_q\.weight.*secret"):
        resources.inspect_lora(path)
    nothing = _save(tmp_path / "n.safetensors", {"model.diffusion_model.out.0.weight": (4,)})
    with pytest.raises(ResourceError, match=r"not LoRA keys: model\.diffusion_model"):
        resources.inspect_lora(nothing)


def test_broken_factor_pairs_are_refused(tmp_path: Path) -> None:
    lonely = _save(tmp_path / "l.safetensors", {"lora_unet_x.lora_down.weight": (4, 8)})
    with pytest.raises(ResourceError, match="lacks its up"):
        resources.inspect_lora(lonely)
    crooked = _save(tmp_path / "c.safetensors", {
        "lora_unet_x.lora_down.weight": (4, 8), "lora_unet_x.lora_up.weight": (8, 5),
    })  # fmt: skip
    with pytest.raises(ResourceError, match="do not chain"):
        resources.inspect_lora(crooked)
    orphan = _save(tmp_path / "a.safetensors", {
        "lora_unet_x.lora_down.weight": (4, 8), "lora_unet_x.lora_up.weight": (8, 4),
        "lora_unet_y.alpha": (),
    })  # fmt: skip
    with pytest.raises(ResourceError, match=r"lora_unet_y\.alpha"):
        resources.inspect_lora(orphan)


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".bin"])
def test_pickled_loras_are_refused_unread(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lora{suffix}"
    path.write_bytes(b"\x80\x04 not even read")
    with pytest.raises(ResourceError, match="pickle"):
        resources.inspect_lora(path)
    with pytest.raises(ResourceError, match=r"not a \.safetensors"):
        resources.inspect_lora(tmp_path / "lora.txt")


def test_the_shipped_outline_lora() -> None:
    path = MODELS / "seedbank-scenes-outline-lora" / "scenes-outline-lora.safetensors"
    lora = resources.inspect_lora(path)
    assert (lora.format, lora.targets) == ("peft", ("unet",))


# --- embeddings -----------------------------------------------------------------------------


def test_embedding_formats(tmp_path: Path) -> None:
    a1111 = _save(tmp_path / "a.safetensors", {"emb_params": (3, 768)})
    assert resources.inspect_embedding(a1111) == resources.EmbeddingFile("a1111-safetensors", 3,
                                                                         768)  # fmt: skip
    token = _save(tmp_path / "d.safetensors", {"<cat-toy>": (768,)})
    assert resources.inspect_embedding(token) == resources.EmbeddingFile("diffusers", 1, 768)
    sdxl = _save(tmp_path / "x.safetensors", {"clip_l": (2, 768), "clip_g": (2, 1280)})
    assert resources.inspect_embedding(sdxl) == resources.EmbeddingFile("sdxl", 2, 768, 1280)


def test_embedding_refusals(tmp_path: Path) -> None:
    mismatched = _save(tmp_path / "m.safetensors", {"clip_l": (2, 768), "clip_g": (3, 1280)})
    with pytest.raises(ResourceError, match="clip_g has 3"):
        resources.inspect_embedding(mismatched)
    two = _save(tmp_path / "t.safetensors", {"a": (768,), "b": (768,)})
    with pytest.raises(ResourceError, match="not embedding"):
        resources.inspect_embedding(two)
    cube = _save(tmp_path / "c.safetensors", {"emb_params": (1, 2, 3)})
    with pytest.raises(ResourceError, match="not vectors"):
        resources.inspect_embedding(cube)
    with pytest.raises(ResourceError, match="pickle"):
        resources.inspect_embedding(tmp_path / "e.ckpt")


def test_pickled_embeddings_load_weights_only(tmp_path: Path) -> None:
    import torch  # torch is a dependency; imported here to keep the module's import light

    a1111 = tmp_path / "a.pt"
    torch.save({"string_to_param": {"*": torch.zeros(2, 768)}, "name": "e", "step": 10}, a1111)
    assert resources.inspect_embedding(a1111) == resources.EmbeddingFile("a1111-pt", 2, 768)
    learned = tmp_path / "learned_embeds.bin"
    torch.save({"<x>": torch.zeros(768)}, learned)
    assert resources.inspect_embedding(learned) == resources.EmbeddingFile("diffusers", 1, 768)
    hostile = tmp_path / "h.pt"
    torch.save({"string_to_param": {"*": torch.zeros(1, 4)}, "payload": _Payload()}, hostile)
    with pytest.raises(ResourceError, match="plain-tensor"):
        resources.inspect_embedding(hostile)


class _Payload:
    """Stands for what a malicious pickle would carry: not a tensor or a plain container."""


# --- VAE ------------------------------------------------------------------------------------


def test_vae_layouts(tmp_path: Path) -> None:
    diffusers = _save(tmp_path / "d.safetensors", {
        "encoder.down_blocks.0.resnets.0.conv1.weight": (2,),
        "decoder.up_blocks.0.resnets.0.conv1.weight": (2,),
        "post_quant_conv.weight": (2,),
    })  # fmt: skip
    assert resources.inspect_vae(diffusers) == resources.VaeFile("diffusers", 3)
    ldm = _save(tmp_path / "l.safetensors", {
        "encoder.down.0.block.0.conv1.weight": (2,),
        "decoder.mid.block_1.norm1.weight": (2,),
        "quant_conv.bias": (2,),
    })  # fmt: skip
    assert resources.inspect_vae(ldm) == resources.VaeFile("ldm", 3)


def test_vae_refusals(tmp_path: Path) -> None:
    checkpoint = _save(tmp_path / "c.safetensors", {
        "first_stage_model.encoder.down.0.block.0.conv1.weight": (2,),
        "model.diffusion_model.input_blocks.0.0.weight": (2,),
    })  # fmt: skip
    with pytest.raises(ResourceError, match=r"not VAE .*first_stage_model"):
        resources.inspect_vae(checkpoint)
    mixed = _save(tmp_path / "m.safetensors", {
        "encoder.down.0.block.0.conv1.weight": (2,),
        "decoder.up_blocks.0.resnets.0.conv1.weight": (2,),
    })  # fmt: skip
    with pytest.raises(ResourceError, match="both"):
        resources.inspect_vae(mixed)
    with pytest.raises(ResourceError, match="pickle"):
        resources.inspect_vae(tmp_path / "vae.pt")


@pytest.mark.parametrize(
    "file",
    [
        "seedbank-scenes-vae-v1/scenes-vae-v1.safetensors",
        "seedbank-scenes-vae-ft/scenes-vae-ft.safetensors",
        "seedbank-scenes-sd/vae/diffusion_pytorch_model.safetensors",
    ],
)
def test_the_shipped_vaes(file: str) -> None:
    path = MODELS / file
    assert resources.inspect_vae(path).format == "diffusers"


# --- the shipped resources (models/, built by engine.training.resources_build) ---------------


def test_the_shipped_resources_are_the_files_digested() -> None:
    from engine.training.shipped import RESOURCE_FOLDERS, read_digests, read_resource_digests

    digests = read_resource_digests(MODELS)
    assert set(digests) == set(RESOURCE_FOLDERS)
    assert not set(read_digests(MODELS)) & set(RESOURCE_FOLDERS)  # model digests stay apart
    for folder, digest in digests.items():
        (file,) = (MODELS / folder).glob("*.safetensors")
        assert resources.file_sha256(file) == digest, folder


def test_factorise_is_the_truncated_svd_padded_to_the_rank() -> None:
    import torch

    from engine.training.lora_extract import factorise

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(shape, generator=generator, dtype=torch.float64) for shape in
            ((6, 3), (3, 18)))  # fmt: skip
    low = a @ b  # rank 3
    up, down = factorise(low.reshape(6, 2, 3, 3), rank=3)
    assert up.shape == (6, 3) and down.shape == (3, 18)
    assert torch.allclose(up @ down, low, atol=1e-10)
    assert all(column[column.abs().argmax()] > 0 for column in up.T)  # the sign rule
    up_2, down_2 = factorise(low, rank=2)
    assert torch.equal(up_2, up[:, :2]) and torch.equal(down_2, down[:2])
    # Three output rows hold three pairs at most; a rank-4 LoRA gets a zero fourth pair.
    up_4, down_4 = factorise(b.reshape(3, 2, 3, 3), rank=4)
    assert up_4.shape == (3, 4) and down_4.shape == (4, 18)
    assert torch.allclose(up_4 @ down_4, b, atol=1e-10)
    assert not up_4[:, 3].any() and not down_4[3].any()


def test_the_shipped_lora_loads_every_tensor_and_moves_the_unet_towards_the_finetune() -> None:
    import io
    import logging

    import torch

    from engine.tiny_models import StableDiffusionPipeline
    from engine.training.lora_extract import LORA_FILE
    from engine.training.shipped import OUTLINE_FOLDER, OUTLINE_LORA_FOLDER, SD_FOLDER

    pipe = StableDiffusionPipeline.from_pretrained(MODELS / SD_FOLDER)
    tuned = StableDiffusionPipeline.from_pretrained(MODELS / OUTLINE_FOLDER).unet
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base_out = pipe.unet(latents, 500, encoder_hidden_states=context).sample
        tuned_out = tuned(latents, 500, encoder_hidden_states=context).sample
    heard = io.StringIO()
    handler = logging.StreamHandler(heard)
    logging.getLogger("diffusers").addHandler(handler)
    try:
        pipe.load_lora_weights(MODELS / OUTLINE_LORA_FOLDER, weight_name=LORA_FILE,
                               adapter_name="outline")  # fmt: skip
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
    assert "unexpected keys" not in heard.getvalue()
    in_file = sum(int(np.prod(entry["shape"])) for entry in resources.safetensors_header(
        MODELS / OUTLINE_LORA_FOLDER / LORA_FILE)["tensors"].values())  # fmt: skip
    loaded = sum(p.numel() for name, p in pipe.unet.named_parameters() if ".lora_" in name)
    assert loaded == in_file
    with torch.no_grad():
        lora_out = pipe.unet(latents, 500, encoder_hidden_states=context).sample
    assert (lora_out - tuned_out).abs().mean() < 0.5 * (base_out - tuned_out).abs().mean()
