"""Reading what other tools wrote: image metadata and prompt tables, as source recipes.

Django-free, like the rest of the engine: each reader turns one image file or one table row
into a `SourceRecipe` (engine.imports.source) or rejects it with a reason a person can act on;
the archive decides what becomes a record (an import service in the apps above).
"""
