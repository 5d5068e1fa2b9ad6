"""Bringing archives in and out: imports from other tools, their provenance, exports.

Sits between the web (gallery) and records (generator): it writes records through generator's
services and knows nothing of pages, collections or search.
"""
