"""Reads for models, records and render jobs, one concept per module."""
