"""What a render does beyond diffusers' plain call: LoRA adapters, a VAE file, clip skip, hires fix.

Standalone on purpose: this module imports only torch, diffusers, safetensors and PIL (no
Seedbank code, no `from __future__`), because engine.export pastes its source verbatim into
every exported script. The worker (engine.pipeline) and an export therefore run the same lines,
and a recipe with a LoRA, a VAE override, clip skip or a hires pass re-renders bit for bit
outside Seedbank.

Choices that move pixels, fixed here and recorded by the caller:
- LoRAs are diffusers/peft adapters, **not fused**: `fuse_lora` rounds differently from the
  unfused adapter, so one of the two had to be the rule. Several LoRAs sum in recipe order.
- A VAE file replaces the model's VAE weights under the model's own VAE config (as in A1111:
  the scaling factor stays the model's); every key must load.
- Clip skip has A1111's meaning (1 = last layer). diffusers' own `clip_skip` argument reaches
  for `text_encoder.text_model`, which transformers 5 no longer has, so the prompt embeddings
  are computed here: hidden state n-th from the end, then the final layer norm, as A1111 does.
- Hires fix: the first pass at the recipe size, an upscale (of the latents, or of the decoded
  picture with Lanczos), then img2img at the larger size that runs `steps` denoising steps
  (A1111's "Hires steps"), with the same per-image CPU generators continuing their streams.
"""

import safetensors.torch
import torch
from PIL import Image

LORA_APPLICATION = "diffusers load_lora_weights + set_adapters (peft), unfused, recipe order"
VAE_APPLICATION = "weights loaded strictly into the model's VAE config"
EMBEDDING_APPLICATION = "diffusers load_textual_inversion per render, unloaded after"
HIRES_LATENT_MODES = {"Latent": "bilinear", "Latent (nearest)": "nearest"}


class ResourceRefused(ValueError):
    """A resource file that cannot be applied exactly as recorded (keys that do not load)."""


def adapter_name(sha256):
    """The adapter's name inside the pipeline: the file's digest, so one file loads once."""
    return "sb_" + sha256[:16]


def _loaded_adapters(pipe):
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _adapter_tensors(pipe, name):
    # peft names adapter parameters "<module>.lora_A.<adapter>.weight" (and lora_B, DoRA's
    # lora_magnitude_vector.<adapter>): one parameter per LoRA tensor in the file.
    marker = "." + name + "."
    return sum(
        1
        for module in (pipe.unet, pipe.text_encoder)
        for parameter_name, _ in module.named_parameters()
        if marker in parameter_name or parameter_name.endswith("." + name)
    )


def load_lora(pipe, sha256, path):
    """Load a LoRA file as an adapter (once per pipeline); refuse it unless every tensor loads."""
    name = adapter_name(sha256)
    if name in _loaded_adapters(pipe):
        return name
    state = safetensors.torch.load_file(path)
    # Kohya files carry one "alpha" scalar per module; it becomes the adapter's scaling, not a
    # parameter. Every other tensor must become exactly one adapter parameter.
    expected = sum(1 for key in state if not key.endswith(".alpha"))
    pipe.load_lora_weights(state, adapter_name=name)
    found = _adapter_tensors(pipe, name)
    if found != expected:
        if name in _loaded_adapters(pipe):
            pipe.delete_adapters([name])
        raise ResourceRefused(
            f"LoRA {path}: {expected} tensors in the file, {found} loaded into the model; "
            "keys that do not load would be dropped silently, so it is refused."
        )
    return name


def apply_loras(pipe, loras):
    """Activate exactly `loras` — (sha256, path, weight) in recipe order — and nothing else."""
    if not loras:
        if _loaded_adapters(pipe):
            pipe.disable_lora()  # loaded adapters stay, computed for no layer
        return []
    names = [load_lora(pipe, sha256, path) for sha256, path, _ in loras]
    pipe.enable_lora()
    pipe.set_adapters(names, adapter_weights=[float(weight) for _, _, weight in loras])
    return names


def load_embeddings(pipe, embeddings):
    """Add each (token, path) textual-inversion embedding to the pipeline's tokenizer and text
    encoder for one render; `unload_embeddings` takes them out again, so a prompt that only
    happens to contain a token's text reads as plain words in every other recipe."""
    for token, path in embeddings:
        pipe.load_textual_inversion(path, token=token)


def unload_embeddings(pipe, embeddings):
    if embeddings:
        pipe.unload_textual_inversion()


def _expand_tokens(pipe, text):
    # A multi-vector embedding is several added tokens ("tok tok_1 …"); diffusers expands its
    # name only inside its own prompt encoding, so the embeddings paths here do it too.
    convert = getattr(pipe, "maybe_convert_prompt", None)
    return convert(text, pipe.tokenizer) if convert is not None else text


def vae_from_file(base_vae, path):
    """The model's VAE architecture and config with the weights of a VAE file."""
    state = safetensors.torch.load_file(path)
    if any(key.startswith("encoder.down.") for key in state):
        # A1111's VAE files keep the original LDM key names.
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state = convert_ldm_vae_checkpoint(state, dict(base_vae.config))
    # from_config draws random initial weights; keep that off the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        vae = type(base_vae).from_config(base_vae.config)
    missing, unexpected = vae.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ResourceRefused(
            f"VAE {path} does not fit this model's VAE: {len(missing)} weights missing "
            f"(e.g. {sorted(missing)[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {sorted(unexpected)[:3]})."
        )
    vae = vae.to(base_vae.device)
    if vae.dtype != base_vae.dtype:  # diffusers warns about any dtype cast, needed or not
        vae = vae.to(dtype=base_vae.dtype)
    return vae.eval()


def text_embeddings(pipe, text, clip_skip):
    """Prompt embeddings as diffusers tokenizes (padded and cut to the encoder's 77 tokens),
    taken `clip_skip` layers from the end (A1111's meaning), then the final layer norm."""
    encoder = pipe.text_encoder
    layers = encoder.config.num_hidden_layers
    if not 1 <= clip_skip <= layers:
        raise ValueError(f"clip skip {clip_skip} needs a text encoder of at least that many "
                         f"layers; this one has {layers}")  # fmt: skip
    ids = pipe.tokenizer(
        text,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(encoder.device)
    output = encoder(ids, output_hidden_states=True)
    if clip_skip == 1:
        return output[0].to(encoder.dtype)
    # transformers 5 flattened CLIPTextModel; older versions keep the layer norm in text_model.
    norm = getattr(encoder, "text_model", encoder).final_layer_norm
    return norm(output.hidden_states[-clip_skip]).to(encoder.dtype)


def prompt_arguments(pipe, prompt, negative_prompt, clip_skip, encode_pair=None):
    """What the pipeline call gets for the prompts: the texts themselves (diffusers encodes
    them) unless clip skip asks for another layer or a weighting parser (`encode_pair`, from
    engine/prompt_weighting.py) reads them, then the embeddings."""
    if encode_pair is not None or clip_skip != 1:
        prompt, negative_prompt = (
            _expand_tokens(pipe, prompt),
            _expand_tokens(pipe, negative_prompt),
        )
    if encode_pair is not None:
        with torch.no_grad():
            positive, negative = encode_pair(
                prompt,
                negative_prompt,
                tokenizer=pipe.tokenizer,
                text_encoder=pipe.text_encoder,
                clip_skip=clip_skip,
                device=pipe.text_encoder.device,
            )
        return {"prompt_embeds": positive, "negative_prompt_embeds": negative}
    if clip_skip == 1:
        return {"prompt": prompt, "negative_prompt": negative_prompt}
    with torch.no_grad():
        return {
            "prompt_embeds": text_embeddings(pipe, prompt, clip_skip),
            "negative_prompt_embeds": text_embeddings(pipe, negative_prompt, clip_skip),
        }


def hires_size(width, height, scale):
    """The final size: each side scaled and rounded down to a multiple of 8."""
    return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8


def hires_inference_steps(steps, denoise):
    """diffusers' img2img runs int(num_inference_steps × strength) steps; the smallest
    num_inference_steps that runs `steps` of them (A1111 counts the steps actually run)."""
    count = steps
    while min(int(count * denoise), count) < steps:
        count += 1
    return count


def hires_upscale(first, upscaler, width, height, vae_scale_factor):
    """The first pass's output at the final size: latents interpolated, or pictures resized."""
    if upscaler in HIRES_LATENT_MODES:
        size = (height // vae_scale_factor, width // vae_scale_factor)
        mode = HIRES_LATENT_MODES[upscaler]
        return torch.nn.functional.interpolate(first, size=size, mode=mode, antialias=False)
    if upscaler == "Lanczos":
        return [picture.resize((width, height), Image.Resampling.LANCZOS) for picture in first]
    raise ValueError(f"unknown hires upscaler {upscaler!r}")


def second_pass_pipeline(pipe):
    """img2img over the same modules, with a fresh scheduler of the same config."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import (
        StableDiffusionImg2ImgPipeline,
    )

    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    second = StableDiffusionImg2ImgPipeline(
        **{**pipe.components, "scheduler": scheduler}, requires_safety_checker=False
    )
    second.set_progress_bar_config(disable=True)
    return second


def generate(
    pipe,
    *,
    prompt,
    negative_prompt,
    steps,
    guidance,
    generators,
    mode_arguments,
    clip_skip=1,
    hires=None,
    encode_pair=None,
    embeddings=(),
    callback=None,
    second_callback=None,
):
    """Render one image per generator: the pipeline call (and a hires pass when asked).

    `mode_arguments` are the call's size or img2img/inpaint inputs; `hires` a dict with scale,
    upscaler, steps and denoise; `encode_pair` a prompt weighting parser's encoder;
    `embeddings` (token, path) pairs loaded for this render only. Returns PIL images.
    """
    load_embeddings(pipe, embeddings)
    try:
        return _generate(
            pipe, prompt, negative_prompt, steps, guidance, generators, mode_arguments,
            clip_skip, hires, encode_pair, callback, second_callback,
        )  # fmt: skip
    finally:
        unload_embeddings(pipe, embeddings)


def _generate(
    pipe,
    prompt,
    negative_prompt,
    steps,
    guidance,
    generators,
    mode_arguments,
    clip_skip,
    hires,
    encode_pair,
    callback,
    second_callback,
):
    prompts = prompt_arguments(pipe, prompt, negative_prompt, clip_skip, encode_pair)
    common = {
        **prompts,
        "guidance_scale": guidance,
        "num_images_per_prompt": len(generators),
        "generator": generators,
    }
    first_output = "pil"
    if hires is not None:
        first_output = "latent" if hires["upscaler"] in HIRES_LATENT_MODES else "pil"
    extra = {"callback_on_step_end": callback} if callback is not None else {}
    first = pipe(
        num_inference_steps=steps, output_type=first_output, **common, **mode_arguments, **extra
    ).images
    if hires is None:
        return first
    width, height = hires_size(mode_arguments["width"], mode_arguments["height"], hires["scale"])
    upscaled = hires_upscale(first, hires["upscaler"], width, height, pipe.vae_scale_factor)
    second_steps = hires["steps"] or steps
    extra = {"callback_on_step_end": second_callback} if second_callback is not None else {}
    return second_pass_pipeline(pipe)(
        image=upscaled,
        strength=hires["denoise"],
        num_inference_steps=hires_inference_steps(second_steps, hires["denoise"]),
        output_type="pil",
        **common,
        **extra,
    ).images
