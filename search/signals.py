"""Signals search sends, so the apps above it (archive) react without search importing them.

`embedding_model_activated` is sent once a switch of the active CLIP model has committed
(kwargs: model). Vectors another app made with the old model's encoder are stale from then on:
archive's imported prompts go back to their embedding backlog (archive/receivers.py).
"""

from django.dispatch import Signal

embedding_model_activated = Signal()
