"""Reading recipes from image files as each tool writes them (engine.imports.image_files)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, PngImagePlugin

from engine.imports.image_files import recipe_from_image
from engine.imports.source import RowRejected, SourceResource
from engine.pipeline import pixel_sha256
from engine.recipe import Hires

LIMIT = 4096 * 4096


def png(chunks: dict[str, str], size: tuple[int, int] = (16, 24), colour: str = "red") -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        if value.isascii():
            info.add_text(key, value)
        else:
            info.add_itxt(key, value)  # tEXt is Latin-1; tools write UTF-8 text as iTXt
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def with_user_comment(text: str, image_format: str, *, little_endian: bool = False) -> bytes:
    """A JPEG or WebP whose EXIF UserComment holds `text`, as A1111 writes it (piexif's
    UserComment.dump with encoding="unicode")."""
    exif = Image.Exif()
    body = text.encode("utf-16-le" if little_endian else "utf-16-be")
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + body
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "blue").save(buffer, format=image_format, exif=exif)
    return buffer.getvalue()


A1111_TEXT = (
    "a cat in a hat, (masterpiece:1.2)\n"
    'Negative prompt: blurry, "lowres"\n'
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.9.0"
)


def test_a1111_png_reads_every_field():
    found = recipe_from_image(png({"parameters": A1111_TEXT}), "a.png", max_pixels=LIMIT)
    assert found.tool == "a1111"
    assert found.prompt == "a cat in a hat, (masterpiece:1.2)"
    assert found.negative_prompt == 'blurry, "lowres"'
    assert (found.steps, found.guidance, found.seed) == (20, 7.0, 1234)
    assert (found.width, found.height) == (512, 768)  # the recipe's size, not the file's
    assert found.scheduler == "DPM++ 2M Karras"
    assert (found.model_name, found.model_hash) == ("v1-5-pruned-emaonly", "6ce0161689")
    assert found.raw == {"parameters": A1111_TEXT}
    assert found.source_key.startswith("image:") and found.image is not None
    assert Image.open(io.BytesIO(found.image)).size == (16, 24)
    # the digest the pipeline gives its own renders, so a reproduction can match it
    assert found.pixel_sha256 == pixel_sha256(Image.open(io.BytesIO(found.image)))
    assert found.source_key == f"image:{found.pixel_sha256}"


@pytest.mark.parametrize(("image_format", "little_endian"), [("JPEG", False), ("WEBP", True)])
def test_a1111_exif_user_comment(image_format, little_endian):
    text = A1111_TEXT.replace("a cat", "一只猫")
    data = with_user_comment(text, image_format, little_endian=little_endian)
    found = recipe_from_image(data, "a.jpg", max_pixels=LIMIT)
    assert found.tool == "a1111"
    assert found.prompt.startswith("一只猫 in a hat")
    assert found.seed == 1234


def test_unknown_sampler_is_kept_and_reported_not_guessed():
    text = A1111_TEXT.replace("DPM++ 2M, Schedule type: Karras", "DPM++ 3M SDE")
    found = recipe_from_image(png({"parameters": text}), "a.png", max_pixels=LIMIT)
    assert found.scheduler is None
    assert found.sampler == "DPM++ 3M SDE"
    assert "DPM++ 3M SDE" in found.warnings[0]


COMFY_GRAPH = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42, "steps": 25, "cfg": 6.5, "sampler_name": "dpmpp_2m",
            "scheduler": "karras", "denoise": 1.0, "model": ["10", 0],
            "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                                  "lora_name": "x.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640,
                                                        "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["11", 0], "clip": ["4", 1]}},
    "11": {"class_type": "PrimitiveNode", "inputs": {"value": "a lighthouse, 灯塔"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark",
                                                      "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
}  # fmt: skip


def test_comfyui_graph_follows_links_to_prompt_model_and_size():
    chunks = {"prompt": json.dumps(COMFY_GRAPH), "workflow": json.dumps({"nodes": []})}
    found = recipe_from_image(png(chunks), "c.png", max_pixels=LIMIT)
    assert found.tool == "comfyui"
    assert found.prompt == "a lighthouse, 灯塔"
    assert found.negative_prompt == "text, watermark"
    assert (found.seed, found.steps, found.guidance) == (42, 25, 6.5)
    assert (found.width, found.height) == (512, 640)
    assert found.scheduler == "DPM++ 2M Karras"
    assert found.model_name == "v1-5-pruned-emaonly.safetensors"
    assert set(found.raw) == {"prompt", "workflow"}


def test_comfyui_second_pass_is_reported():
    graph = json.loads(json.dumps(COMFY_GRAPH))
    graph["12"] = {"class_type": "KSampler", "inputs": {**graph["3"]["inputs"],
                                                       "latent_image": ["3", 0]}}  # fmt: skip
    found = recipe_from_image(png({"prompt": json.dumps(graph)}), "c.png", max_pixels=LIMIT)
    assert found.steps == 25
    assert any("2 sampler passes" in warning for warning in found.warnings)


def test_comfyui_64_bit_seed_is_rejected_with_the_reason():
    graph = json.loads(json.dumps(COMFY_GRAPH))
    graph["3"]["inputs"]["seed"] = 156680208700286
    with pytest.raises(RowRejected, match="Seed must be between 0 and 4294967295"):
        recipe_from_image(png({"prompt": json.dumps(graph)}), "c.png", max_pixels=LIMIT)


LORA_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 7, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1.0, "model": ["21", 0], "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "20": {"class_type": "LoraLoader", "inputs": {
        "model": ["4", 0], "clip": ["4", 1], "lora_name": "styles/outline.safetensors",
        "strength_model": 0.8, "strength_clip": 0.8}},
    "21": {"class_type": "LoraLoader", "inputs": {
        "model": ["20", 0], "clip": ["20", 1], "lora_name": "paper.safetensors",
        "strength_model": 0.5, "strength_clip": 0.5}},
    "22": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["21", 1],
                                                        "stop_at_clip_layer": -2}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64,
                                                        "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a boat", "clip": ["22", 0]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["22", 0]}},
    "30": {"class_type": "VAELoader", "inputs": {"vae_name": "vae-ft-mse.safetensors"}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["30", 0]}},
}  # fmt: skip


def comfy(graph):
    return recipe_from_image(png({"prompt": json.dumps(graph)}), "c.png", max_pixels=LIMIT)


def test_comfyui_lora_chain_clip_skip_and_vae_loader():
    found = comfy(LORA_GRAPH)
    assert [(lora.kind, lora.name, lora.weight) for lora in found.loras] == [
        ("lora", "outline", 0.8), ("lora", "paper", 0.5)]  # checkpoint first  # fmt: skip
    assert found.clip_skip == 2
    assert found.vae == SourceResource(kind="vae", name="vae-ft-mse")
    assert (found.model_name, found.unsupported, found.warnings) == ("sd15.safetensors", (), ())


def test_comfyui_lora_strengths_that_differ_are_refused():
    graph = json.loads(json.dumps(LORA_GRAPH))
    graph["21"]["inputs"]["strength_clip"] = 1.0
    with pytest.raises(RowRejected, match=r"strength_model 0\.5 and strength_clip 1\.0"):
        comfy(graph)


def test_comfyui_model_only_lora_and_unknown_patches_are_reported():
    graph = json.loads(json.dumps(LORA_GRAPH))
    graph["21"] = {
        "class_type": "LoraLoaderModelOnly",
        "inputs": {"model": ["23", 0], "lora_name": "paper.safetensors", "strength_model": 0.5},
    }
    graph["23"] = {"class_type": "FreeU_V2", "inputs": {"model": ["20", 0], "b1": 1.3}}
    graph["22"]["inputs"]["clip"] = ["20", 1]
    graph["7"]["inputs"]["clip"] = ["4", 1]  # the negative skips the LoRA and clip skip
    found = comfy(graph)
    assert [lora.name for lora in found.loras] == ["outline", "paper"]
    assert "patches the model only" in found.warnings[0]
    assert found.unsupported == (
        "ComfyUI node FreeU_V2 changes the model",
        "the negative prompt goes through another text encoder (LoRAs or clip skip) than the "
        "positive one",
    )


def test_seedbank_chunk_brings_its_resources_by_sha256():
    from engine.infotext import recipe_to_json

    lora = {"resource": "ab" * 32, "weight": 0.8, "name": "outline@main"}
    recipe = {"prompt": "x", "seed": 5, "steps": 4, "guidance": 7.5, "width": 64,
              "height": 64, "scheduler": "DDIM", "model": "tiny", "model_digest": "cd" * 32,
              "loras": [lora], "vae": {"resource": "ef" * 32, "name": "vae@v1"},
              "clip_skip": 2, "hires": {"scale": 2.0, "upscaler": "Lanczos", "steps": 0,
                                        "denoise": 0.5}}  # fmt: skip
    found = recipe_from_image(png({"seedbank": recipe_to_json(recipe)}), "s.png", max_pixels=LIMIT)
    assert found.loras == (SourceResource(kind="lora", name="outline@main", hash="ab" * 32,
                                          weight=0.8),)  # fmt: skip
    assert found.vae == SourceResource(kind="vae", name="vae@v1", hash="ef" * 32)
    assert (found.clip_skip, found.hires) == (2, Hires(scale=2.0, upscaler="Lanczos", denoise=0.5))
    later = {**recipe, "mode": "img2img", "strength": 0.5, "init_image_sha256": "00" * 32,
             "style_strength": 3}  # fmt: skip
    found = recipe_from_image(png({"seedbank": recipe_to_json(later)}), "s.png", max_pixels=LIMIT)
    assert found.unsupported == (
        "mode img2img: its init image is not in the source",
        "recipe fields this Seedbank does not know: style_strength",
    )


def test_invokeai_metadata():
    metadata = {
        "generation_mode": "txt2img", "positive_prompt": "a fox", "negative_prompt": "",
        "width": 512, "height": 512, "seed": 7, "rand_device": "cpu", "cfg_scale": 7.5,
        "steps": 30, "scheduler": "euler_a",
        "model": {"key": "k", "hash": "blake3:abc", "name": "stable-diffusion-v1-5",
                  "base": "sd-1", "type": "main"},
    }  # fmt: skip
    found = recipe_from_image(
        png({"invokeai_metadata": json.dumps(metadata)}), "i.png", max_pixels=LIMIT
    )
    assert (found.tool, found.prompt, found.seed, found.steps) == ("invokeai", "a fox", 7, 30)
    assert (found.scheduler, found.model_name, found.model_hash) == (
        "Euler a", "stable-diffusion-v1-5", "blake3:abc")  # fmt: skip


def test_novelai():
    comment = {"prompt": "1girl, cherry blossoms", "steps": 28, "height": 768, "width": 512,
               "scale": 11, "seed": 3223424591, "noise_schedule": "native",
               "sampler": "k_euler_ancestral", "uc": "lowres"}  # fmt: skip
    chunks = {"Title": "AI generated image", "Description": "1girl, cherry blossoms",
              "Software": "NovelAI", "Source": "Stable Diffusion 1D44365E",
              "Comment": json.dumps(comment)}  # fmt: skip
    found = recipe_from_image(png(chunks), "n.png", max_pixels=LIMIT)
    assert (found.tool, found.seed, found.guidance) == ("novelai", 3223424591, 11.0)
    assert (found.scheduler, found.negative_prompt) == ("Euler a", "lowres")
    assert (found.model_name, found.model_hash) == ("Stable Diffusion", "1D44365E")


def test_fooocus_keeps_its_sde_sampler_unmapped():
    parameters = {"prompt": "a castle", "negative_prompt": "", "resolution": "(1152, 896)",
                  "guidance_scale": 4, "sharpness": 2, "base_model": "juggernautXL.safetensors",
                  "base_model_hash": "aeb7e9e689", "sampler": "dpmpp_2m_sde_gpu",
                  "scheduler": "karras", "seed": "1234", "version": "Fooocus v2.4.3"}  # fmt: skip
    chunks = {"parameters": json.dumps(parameters), "fooocus_scheme": "fooocus"}
    found = recipe_from_image(png(chunks), "f.png", max_pixels=LIMIT)
    assert (found.tool, found.width, found.height, found.seed) == ("fooocus", 1152, 896, 1234)
    assert found.scheduler is None and found.sampler == "dpmpp_2m_sde_gpu"
    assert found.model_hash == "aeb7e9e689"


def test_swarmui():
    params = {"sui_image_params": {"prompt": "a robot", "negativeprompt": "ugly",
              "model": "OfficialStableDiffusion/sd_xl_base_1.0", "seed": 1, "steps": 20,
              "cfgscale": 7, "width": 1024, "height": 1024, "sampler": "euler",
              "scheduler": "normal"}}  # fmt: skip
    found = recipe_from_image(png({"parameters": json.dumps(params)}), "s.png", max_pixels=LIMIT)
    assert (found.tool, found.prompt, found.negative_prompt) == ("swarmui", "a robot", "ugly")
    assert (found.scheduler, found.width) == ("Euler", 1024)


def test_seedbank_chunk_wins_over_its_a1111_copy():
    from engine.infotext import recipe_to_json

    recipe = {"prompt": "exact  spacing ", "negative_prompt": "", "seed": 5, "steps": 4,
              "guidance": 7.5, "width": 64, "height": 64, "scheduler": "DDIM",
              "model": "tiny", "model_digest": "ab" * 32}  # fmt: skip
    chunks = {"parameters": A1111_TEXT, "seedbank": recipe_to_json(recipe)}
    found = recipe_from_image(png(chunks), "s.png", max_pixels=LIMIT)
    assert (found.tool, found.prompt, found.scheduler) == ("seedbank", "exact  spacing ", "DDIM")
    assert found.model_hash == "ab" * 32


def test_same_pixels_same_key_whatever_the_metadata():
    first = recipe_from_image(png({"parameters": A1111_TEXT}), "a.png", max_pixels=LIMIT)
    other = A1111_TEXT.replace("Seed: 1234", "Seed: 99")
    second = recipe_from_image(png({"parameters": other}), "b.png", max_pixels=LIMIT)
    blue = recipe_from_image(png({"parameters": A1111_TEXT}, colour="blue"), "c", max_pixels=LIMIT)
    assert first.source_key == second.source_key != blue.source_key
    assert first.content_digest != second.content_digest


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image", "not a PNG, JPEG or WebP"),
        (png({}), "no recipe found"),
        (png({"parameters": "just a prompt"}), "No parameters line"),
        (png({"invokeai_metadata": "{broken"}), "not valid JSON"),
        (png({"prompt": json.dumps({"1": {"class_type": "SaveImage"}})}), "no KSampler"),
        (png({"parameters": A1111_TEXT}, size=(300, 300)), "300×300 pixels; the limit"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(data, message):
    with pytest.raises(RowRejected, match=message):
        recipe_from_image(data, "x.png", max_pixels=256 * 256)


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # ~50 kB, 400 Mpx
    with pytest.raises(RowRejected, match=r"the limit is|too many pixels"):
        recipe_from_image(buffer.getvalue(), "bomb.png", max_pixels=LIMIT)
