"""Seedbank's engine: everything that decides pixels and vectors, with no Django in sight.

The recipe type and its rules, the scheduler catalogue, the deterministic render pipeline,
model building, blends and single-file conversion, weight digests, verdicts, the CLIP embedder,
keyword segmentation, PNG metadata / A1111 infotext and the standalone export script. Workers,
scripts and notebooks can use it without a settings module; import-linter (pyproject.toml)
forbids it from importing Django or any Seedbank app.
"""
