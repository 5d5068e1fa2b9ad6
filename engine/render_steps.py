"""What a render does beyond diffusers' plain call: LoRA adapters, a VAE file, clip skip, hires
fix, and SDXL's second prompt, size conditioning and refiner.

Standalone on purpose: this module imports only the standard library, torch, diffusers (lazily:
the caller first makes torchvision importable), safetensors and PIL (no Seedbank code, no
`from __future__`), because engine.export pastes its source verbatim into
every exported script. The worker (engine.pipeline) and an export therefore run the same lines,
and a recipe with a LoRA, a VAE override, clip skip, a hires pass or an SDXL refiner re-renders
bit for bit outside Seedbank.

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
- SDXL (a model folder whose model_index.json names StableDiffusionXLPipeline) reads the prompt
  with two text encoders: hidden states one layer before the last, no final layer norm (so
  clip skip 1 is diffusers' own default, and n reads hidden_states[-(n + 1)] of both
  encoders), concatenated, plus the second encoder's pooled projection. An empty negative
  prompt (both of them) is the zero vector when the model's `force_zeros_for_empty_prompt`
  says so, as diffusers does for `negative_prompt=None` and A1111 for an empty one. Sizes and
  crop go to diffusers as original_size, crops_coords_top_left and target_size (None: the size
  of the pass being rendered), and the negative side gets the same, diffusers' default. No
  invisible watermark: it would move pixels depending on whether a package is installed.
- A refiner takes the base's latents at `switch_at` (diffusers' denoising_end, then the
  refiner's denoising_start, the same step count) with the same generators continuing.
"""

import contextlib
import json
import os

import safetensors.torch
import torch
from PIL import Image

LORA_APPLICATION = "diffusers load_lora_weights + set_adapters (peft), unfused, recipe order"
VAE_APPLICATION = "weights loaded strictly into the model's VAE config"
EMBEDDING_APPLICATION = "diffusers load_textual_inversion per render, unloaded after"
HIRES_LATENT_MODES = {"Latent": "bilinear", "Latent (nearest)": "nearest"}
SDXL_TEXT_ENCODING = (
    "both text encoders' hidden_states[-(clip_skip + 1)], no final layer norm, concatenated; "
    "pooled: text_encoder_2's projection"
)
SDXL_EMPTY_NEGATIVE = (
    "zero embeddings when both negative prompts are empty and force_zeros_for_empty_prompt"
)
REFINER_APPLICATION = (
    "base denoising_end=switch_at, output latents; refiner (StableDiffusionXLImg2ImgPipeline) "
    "denoising_start=switch_at, same steps and generators"
)
# The pipeline each kind of model folder (model_index.json's _class_name) renders each mode
# with; the img2img and inpainting pipelines share the loaded modules.
MODE_PIPELINES = {
    "StableDiffusionPipeline": {
        "txt2img": "StableDiffusionPipeline",
        "img2img": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    },
    "StableDiffusionXLPipeline": {
        "txt2img": "StableDiffusionXLPipeline",
        "img2img": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    },
}
# Any SDXL-shaped folder (a refiner, or an SDXL model itself) refines through this class.
REFINER_PIPELINE = "StableDiffusionXLImg2ImgPipeline"


def model_class_name(model_path):
    """The pipeline class a diffusers folder was saved with (its model_index.json)."""
    with open(os.path.join(model_path, "model_index.json"), encoding="utf-8") as handle:
        return json.load(handle)["_class_name"]


def diffusers_class(name):
    import diffusers

    return getattr(diffusers, name)


def load_options(class_name):
    """What from_pretrained needs besides the dtype to load a folder of this pipeline class."""
    if class_name == "StableDiffusionPipeline":
        return {"safety_checker": None, "requires_safety_checker": False}
    if class_name in MODE_PIPELINES or class_name == REFINER_PIPELINE:
        return {"add_watermarker": False}
    raise ValueError(
        f"{class_name} models are not rendered here; known: {', '.join(MODE_PIPELINES)} "
        f"(and {REFINER_PIPELINE} as a refiner)"
    )


def is_sdxl(pipe):
    return "text_encoder_2" in pipe.components


def _pipeline_options(pipe, class_name):
    if not is_sdxl(pipe):
        return {"requires_safety_checker": False}
    options = {
        "force_zeros_for_empty_prompt": pipe.config.get("force_zeros_for_empty_prompt", True),
        "add_watermarker": False,
    }
    if class_name != "StableDiffusionXLPipeline":
        options["requires_aesthetics_score"] = pipe.config.get("requires_aesthetics_score", False)
    return options


def mode_pipeline(pipe, mode, scheduler=None, vae=None):
    """A pipeline for `mode` over `pipe`'s modules (no weight copies), with its own scheduler
    and VAE when given, configured as `pipe` is (empty-prompt zeros, aesthetics score)."""
    kind = "StableDiffusionXLPipeline" if is_sdxl(pipe) else "StableDiffusionPipeline"
    class_name = MODE_PIPELINES[kind][mode]
    components = dict(pipe.components)
    if scheduler is not None:
        components["scheduler"] = scheduler
    if vae is not None:
        components["vae"] = vae
    fresh = diffusers_class(class_name)(**components, **_pipeline_options(pipe, class_name))
    fresh.set_progress_bar_config(disable=True)
    return fresh


class ResourceRefused(ValueError):
    """A resource file that cannot be applied exactly as recorded (keys that do not load)."""


@contextlib.contextmanager
def _quiet():
    """Loading a LoRA or an embedding logs notices meant for notebooks (no text-encoder keys;
    how new token rows are initialised before the file's vector replaces them): not for a
    worker's log, where they read like failures."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])


def adapter_name(sha256):
    """The adapter's name inside the pipeline: the file's digest, so one file loads once."""
    return "sb_" + sha256[:16]


def _loaded_adapters(pipe):
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _adapter_tensors(pipe, name):
    # peft names adapter parameters "<module>.lora_A.<adapter>.weight" (and lora_B, DoRA's
    # lora_magnitude_vector.<adapter>): one parameter per LoRA tensor in the file.
    marker = "." + name + "."
    modules = (
        pipe.unet,
        getattr(pipe, "text_encoder", None),
        getattr(pipe, "text_encoder_2", None),
    )
    return sum(
        1
        for module in modules
        if module is not None
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
    with _quiet():
        # diffusers converts every layout (kohya, old diffusers, peft) to its own keys, then
        # loads the UNet's part; the text encoders' part is loaded here (_text_encoder_lora).
        converted, alphas = pipe.lora_state_dict(state)
        unet = getattr(pipe, "unet", None)
        type(pipe).load_lora_into_unet(
            converted, network_alphas=alphas, unet=unet, adapter_name=name, _pipeline=pipe
        )
        for prefix in ("text_encoder", "text_encoder_2"):
            encoder = getattr(pipe, prefix, None)
            if encoder is not None:
                _text_encoder_lora(encoder, prefix, converted, alphas or {}, name)
    found = _adapter_tensors(pipe, name)
    if found != expected:
        if name in _loaded_adapters(pipe):
            pipe.delete_adapters([name])
        raise ResourceRefused(
            f"LoRA {path}: {expected} tensors in the file, {found} loaded into the model; "
            "keys that do not load would be dropped silently, so it is refused."
        )
    return name


def _text_encoder_lora(encoder, prefix, state, alphas, name):
    """One text encoder's LoRA layers, injected with peft directly.

    diffusers 0.42 hands them to transformers' `load_adapter`, which transformers 5 allows only
    with peft >= 0.22, and kohya's keys name `text_model.…`, which transformers 5's flattened
    CLIPTextModel no longer has; the layers are the same modules either way.
    """
    from diffusers.utils.peft_utils import get_peft_kwargs
    from diffusers.utils.state_dict_utils import StateDictType, convert_state_dict_to_peft
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    start = prefix + "."
    own = {key[len(start) :]: value for key, value in state.items() if key.startswith(start)}
    if not own:
        return
    if not any(".lora_A." in key or ".lora_B." in key for key in own):
        # Kohya's keys come out of lora_state_dict in diffusers' older layout (to_q_lora.down),
        # which diffusers' own guess recognises only when an out-projection is among them.
        layout = (
            StateDictType.DIFFUSERS
            if any("lora_linear_layer" in key for key in own)
            else StateDictType.DIFFUSERS_OLD
        )
        own = convert_state_dict_to_peft(own, original_type=layout)
    if not hasattr(encoder, "text_model"):
        own = {key.removeprefix("text_model."): value for key, value in own.items()}
    own_alphas = {
        key[len(start) :].removeprefix("text_model."): value
        for key, value in alphas.items()
        if key.startswith(start)
    }
    ranks = {key: value.shape[1] for key, value in own.items() if "lora_B" in key}
    config = LoraConfig(**get_peft_kwargs(ranks, own_alphas, own, is_unet=False))
    inject_adapter_in_model(config, encoder, adapter_name=name)
    set_peft_model_state_dict(encoder, own, adapter_name=name)


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
    happens to contain a token's text reads as plain words in every other recipe.

    An SDXL embedding holds one tensor per text encoder (`clip_l`, `clip_g`); each goes into
    its encoder (a refiner has the second only)."""
    with _quiet():
        _load_embeddings(pipe, embeddings)


def _load_embeddings(pipe, embeddings):
    for token, path in embeddings:
        if not is_sdxl(pipe):
            pipe.load_textual_inversion(path, token=token)
            continue
        state = safetensors.torch.load_file(path)
        if "clip_g" not in state or (pipe.text_encoder is not None and "clip_l" not in state):
            raise ResourceRefused(
                f"embedding {path} has no clip_l and clip_g tensors: it is not an SDXL embedding"
            )
        for key, tokenizer, encoder in _sdxl_encoders(pipe):
            pipe.load_textual_inversion(
                state[key], token=token, tokenizer=tokenizer, text_encoder=encoder
            )


def unload_embeddings(pipe, embeddings):
    if not embeddings:
        return
    if not is_sdxl(pipe):
        pipe.unload_textual_inversion()
        return
    for _, tokenizer, encoder in _sdxl_encoders(pipe):
        pipe.unload_textual_inversion(tokenizer=tokenizer, text_encoder=encoder)


def _sdxl_encoders(pipe):
    """(embedding key, tokenizer, text encoder) of each text encoder an SDXL pipeline has, in
    diffusers' order; a refiner has only the second."""
    pairs = [("clip_l", pipe.tokenizer, pipe.text_encoder)]
    pairs.append(("clip_g", pipe.tokenizer_2, pipe.text_encoder_2))
    return [(key, tokenizer, encoder) for key, tokenizer, encoder in pairs if encoder is not None]


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


def prompt_arguments(
    pipe,
    prompt,
    negative_prompt,
    clip_skip,
    encode_pair=None,
    prompt_2="",
    negative_prompt_2="",
):
    """What the pipeline call gets for the prompts: the texts themselves (diffusers encodes
    them) unless clip skip asks for another layer or a weighting parser (`encode_pair`, from
    engine/prompt_weighting.py) reads them, then the embeddings."""
    if is_sdxl(pipe):
        return sdxl_prompt_arguments(
            pipe, prompt, negative_prompt, prompt_2, negative_prompt_2, clip_skip, encode_pair
        )
    if prompt_2 or negative_prompt_2:
        raise ValueError("a second prompt needs an SDXL model (two text encoders)")
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


def sdxl_prompt_arguments(
    pipe, prompt, negative_prompt, prompt_2, negative_prompt_2, clip_skip, encode_pair=None
):
    """SDXL's prompt arguments. Plain prompts at clip skip 1 go to diffusers as texts ("" for
    the second prompt: the same text, and both negatives empty: None, which diffusers turns
    into zeros when the model's force_zeros_for_empty_prompt says so). Otherwise the
    embeddings are computed here the way diffusers' encode_prompt does, from the layer clip
    skip names, for the prompt and the negative prompt alike."""
    zero_negative = (
        not negative_prompt
        and not negative_prompt_2
        and pipe.config.get("force_zeros_for_empty_prompt", True)
    )
    if encode_pair is None and clip_skip == 1:
        return {
            "prompt": prompt,
            "prompt_2": prompt_2 or None,
            "negative_prompt": None if zero_negative else negative_prompt,
            "negative_prompt_2": negative_prompt_2 or None,
        }
    encoders = _sdxl_encoders(pipe)
    for _, _, encoder in encoders:
        layers = encoder.config.num_hidden_layers
        if not 1 <= clip_skip <= layers:
            raise ValueError(f"clip skip {clip_skip} needs text encoders of at least that many "
                             f"layers; this one has {layers}")  # fmt: skip
    # diffusers pairs [prompt, prompt_2] with the encoders it has: a refiner (second encoder
    # only) reads the first prompt.
    texts = [prompt, prompt_2 or prompt]
    negatives = [negative_prompt, negative_prompt_2 or negative_prompt]
    with torch.no_grad():
        if encode_pair is None:
            positive, pooled = _sdxl_encode(pipe, encoders, texts, clip_skip)
            negative, negative_pooled = _sdxl_encode(pipe, encoders, negatives, clip_skip)
        else:
            positive, negative, pooled, negative_pooled = _sdxl_encode_weighted(
                pipe, encoders, texts, negatives, clip_skip, encode_pair
            )
    if zero_negative:
        negative, negative_pooled = torch.zeros_like(positive), torch.zeros_like(pooled)
    return {
        "prompt_embeds": positive,
        "negative_prompt_embeds": negative,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": negative_pooled,
    }


def _sdxl_encode(pipe, encoders, texts, clip_skip):
    # encode_prompt's own steps: tokens padded and cut to 77, hidden states of the chosen layer
    # from each encoder side by side, the pooled projection from the encoder that has one.
    states, pooled = [], None
    # Not strict: a refiner has one encoder for the two texts, and reads the first, as diffusers.
    for text, (_, tokenizer, encoder) in zip(texts, encoders, strict=False):
        text = pipe.maybe_convert_prompt(text, tokenizer)  # multi-vector embeddings' tokens
        ids = tokenizer(
            text,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        output = encoder(ids.to(encoder.device), output_hidden_states=True)
        if pooled is None and output[0].ndim == 2:
            pooled = output[0]
        states.append(output.hidden_states[-(clip_skip + 1)])
    return torch.cat(states, dim=-1), pooled


class _LayerOutput:
    """What engine/prompt_weighting reads of an encoder's output at clip skip 1."""

    def __init__(self, last_hidden_state):
        self.last_hidden_state = last_hidden_state


class _SdxlLayer:
    """A text encoder as SDXL reads it, for a weighting parser written for SD's last layer:
    its "last hidden state" is the layer clip skip names (no final norm), and the pooled
    projection of every call is kept, in call order."""

    def __init__(self, encoder, clip_skip):
        self.encoder, self.clip_skip, self.pooled = encoder, clip_skip, []

    @property
    def dtype(self):
        return self.encoder.dtype

    @property
    def device(self):
        return self.encoder.device

    def __call__(self, input_ids, output_hidden_states=True):
        output = self.encoder(input_ids, output_hidden_states=True)
        if output[0].ndim == 2:
            self.pooled.append(output[0])
        return _LayerOutput(output.hidden_states[-(self.clip_skip + 1)])


def _sdxl_encode_weighted(pipe, encoders, texts, negatives, clip_skip, encode_pair):
    # Each encoder reads the weighted prompt on its own (A1111 runs its emphasis per encoder
    # too); the pooled projection is the first chunk's, unweighted, as in A1111. encode_pair
    # encodes every chunk of the prompt, then every chunk of the negative, equally many.
    states, negative_states = [], []
    pooled = negative_pooled = None
    pairs = zip(texts, negatives, encoders, strict=False)  # a refiner: one encoder, as above
    for text, negative_text, (_, tokenizer, encoder) in pairs:
        layer = _SdxlLayer(encoder, clip_skip)
        positive, negative = encode_pair(
            pipe.maybe_convert_prompt(text, tokenizer),
            pipe.maybe_convert_prompt(negative_text, tokenizer),
            tokenizer=tokenizer,
            text_encoder=layer,
            clip_skip=1,
            device=encoder.device,
        )
        states.append(positive)
        negative_states.append(negative)
        if layer.pooled:
            chunks = len(layer.pooled) // 2
            pooled, negative_pooled = layer.pooled[0], layer.pooled[chunks]
    if len({state.shape[1] for state in states + negative_states}) != 1:
        raise ValueError("the text encoders split the prompt into different numbers of chunks")
    return (
        torch.cat(states, dim=-1),
        torch.cat(negative_states, dim=-1),
        pooled,
        negative_pooled,
    )


def sdxl_conditioning(original_size=None, crops_coords_top_left=(0, 0), target_size=None):
    """diffusers' micro-conditioning arguments as tuples (JSON gives lists, and diffusers adds
    them together); None: the size of the pass being rendered."""
    return {
        "original_size": tuple(original_size) if original_size else None,
        "crops_coords_top_left": tuple(crops_coords_top_left),
        "target_size": tuple(target_size) if target_size else None,
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
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    return mode_pipeline(pipe, "img2img", scheduler=scheduler)


@contextlib.contextmanager
def _embeddings_loaded(pipes, embeddings):
    """The embeddings in every pipeline for one render, taken out again whatever happens."""
    for each in pipes:
        load_embeddings(each, embeddings)
    try:
        yield
    finally:
        for each in pipes:
            unload_embeddings(each, embeddings)


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
    prompt_2="",
    negative_prompt_2="",
    original_size=None,
    crops_coords_top_left=(0, 0),
    target_size=None,
    refiner=None,
):
    """Render one image per generator: the pipeline call (and a hires or refiner pass).

    `mode_arguments` are the call's size or img2img/inpaint inputs; `hires` a dict with scale,
    upscaler, steps and denoise; `encode_pair` a prompt weighting parser's encoder;
    `embeddings` (token, path) pairs loaded for this render only. SDXL only: the second
    prompts, the size conditioning as (height, width) (None: the size rendered) and
    `refiner`, a dict with the refiner's pipeline ("pipe") and "switch_at". Returns PIL images.
    """
    if not is_sdxl(pipe) and (
        prompt_2 or negative_prompt_2 or original_size or target_size or refiner
        or tuple(crops_coords_top_left) != (0, 0)
    ):  # fmt: skip
        raise ValueError(
            "second prompts, size and crop conditioning and refiners need an SDXL model; "
            f"this one is a {type(pipe).__name__}"
        )
    pipes = [pipe] + ([refiner["pipe"]] if refiner is not None else [])
    with _embeddings_loaded(pipes, embeddings):
        texts = (prompt, negative_prompt, clip_skip, encode_pair)
        texts_2 = (prompt_2, negative_prompt_2)
        prompts = prompt_arguments(pipe, *texts, *texts_2)
        # SD 1.x/2.x pipelines take no size conditioning at all.
        conditioning = (
            sdxl_conditioning(original_size, crops_coords_top_left, target_size)
            if is_sdxl(pipe)
            else {}
        )
        per_image = {"num_images_per_prompt": len(generators), "generator": generators}
        common = {**prompts, "guidance_scale": guidance, **per_image, **conditioning}
        first_output = "pil"
        if hires is not None:
            first_output = "latent" if hires["upscaler"] in HIRES_LATENT_MODES else "pil"
        if refiner is not None:
            first_output = "latent"
            mode_arguments = {**mode_arguments, "denoising_end": refiner["switch_at"]}
        extra = {"callback_on_step_end": callback} if callback is not None else {}
        first = pipe(
            num_inference_steps=steps, output_type=first_output, **common, **mode_arguments, **extra
        ).images
        if refiner is not None:
            # The refiner reads the prompts with its own encoder(s) and its own empty-prompt rule;
            # the micro-conditioning stays the recipe's (a refiner reads an aesthetic score, at
            # diffusers' defaults, where the base reads the target size).
            refined = refiner["pipe"]
            extra = {"callback_on_step_end": second_callback} if second_callback else {}
            return refined(
                image=first,
                num_inference_steps=steps,
                denoising_start=refiner["switch_at"],
                output_type="pil",
                **prompt_arguments(refined, *texts, *texts_2),
                guidance_scale=guidance,
                **per_image,
                **conditioning,
                **extra,
            ).images
        if hires is None:
            return first
        size = mode_arguments["width"], mode_arguments["height"]
        width, height = hires_size(*size, hires["scale"])
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
