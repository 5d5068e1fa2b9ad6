"""Forms of the web gallery: the recipe form (derived from the recipe type) and search."""
