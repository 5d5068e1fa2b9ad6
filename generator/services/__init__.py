"""Writes for models, records and render jobs, one concept per module.

`render_jobs` and `reproductions` are the web side (validate, row first, then queue); `rendering`
is the worker side (claim, run the engine pipeline, store pixels and verdicts).
"""
