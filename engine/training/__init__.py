"""Seedbank's own small models, trained on engine.scenes: `python -m engine.training` (make models).

No model hub is reachable, and random weights make a demo in which nothing follows its prompt
and search cannot be judged. These modules train a tiny CLIP (open_clip) and a tiny
Stable-Diffusion-shaped pipeline (diffusers) on captioned synthetic scenes, seeded and on the
CPU, and save them the way real checkpoints are saved, so the site loads them through the same
paths as any other model.
"""
