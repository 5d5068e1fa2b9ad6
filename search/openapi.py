"""The OpenAPI 3.1 description of Seedbank's JSON API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from search.forms import MODES


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


FILTERS = [
    _query("model", {"type": "string"}, "model version name, e.g. tiny-sd@seed0"),
    _query("scheduler", {"type": "string"}, "canonical scheduler name, e.g. PNDM"),
    _query("width", {"type": "integer"}, "exact width in pixels"),
    _query("height", {"type": "integer"}, "exact height in pixels"),
    _query("seed", {"type": "integer"}, "exact seed"),
    _query("date_from", {"type": "string", "format": "date"}, "created on or after"),
    _query("date_to", {"type": "string", "format": "date"}, "created on or before"),
    _query("collection", {"type": "string"}, "slug of a public collection"),
    _query("nsfw", {"enum": ["include", "exclude", "only"]}, "NSFW-flagged records"),
    _query("min_score", {"type": "number"}, "hide vector matches below this cosine"),
]

LEXICA_IMAGE = {
    "type": "object",
    "properties": {
        **{
            key: {"type": "string"}
            for key in ("id", "gallery", "src", "srcSmall", "prompt", "seed", "model", "promptid")
        },
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "guidance": {"type": "number"},
        "grid": {"type": "boolean"},
        "nsfw": {"type": "boolean"},
    },
}

ERRORS = {
    "type": "object",
    "properties": {"errors": {"type": "object"}, "error": {"type": "string"}},
}


def schema() -> dict[str, Any]:
    json_response = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Seedbank API",
            "version": "1",
            "description": "Search recipes and images; submit recipes to render. Writes use "
            "session authentication with the X-CSRFToken header.",
        },
        "paths": {
            "/api/v1/search": {
                "get": {
                    "summary": "Lexica-compatible search (words, meaning, or an image URL)",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "words, or the URL of an image page/file on this site",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "matches",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "images": {"type": "array", "items": LEXICA_IMAGE}
                                        },
                                    }
                                }
                            },
                        },
                        "400": {"description": "no query"},
                        "429": {"description": "rate limited"},
                    },
                }
            },
            "/api/v1/images": {
                "get": {
                    "summary": "Ranked search with recipes, scores, filters and a cursor",
                    "parameters": [
                        _query("q", {"type": "string"}, "words (vector, keyword or hybrid)"),
                        _query("mode", {"enum": [m for m, _ in MODES]}, "ranking mode"),
                        _query("like", {"type": "integer"}, "image id for image→image"),
                        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                        _query("limit", {"type": "integer", "maximum": 100}, "page size"),
                        *FILTERS,
                    ],
                    "responses": {
                        "200": {"description": "a page of results", **json_response},
                        "400": {
                            "description": "invalid parameters",
                            "content": {"application/json": {"schema": ERRORS}},
                        },
                        "429": {"description": "rate limited"},
                    },
                }
            },
            "/api/v1/renders": {
                "post": {
                    "summary": "Submit a recipe; the worker renders it",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["model_version", "prompt"],
                                    "properties": {
                                        "model_version": {"type": "integer"},
                                        "prompt": {"type": "string"},
                                        "negative_prompt": {"type": "string"},
                                        "seed": {
                                            "type": ["integer", "null"],
                                            "minimum": 0,
                                            "maximum": 4294967295,
                                        },
                                        "scheduler": {"type": "string"},
                                        "steps": {"type": "integer"},
                                        "guidance": {"type": "number"},
                                        "width": {"type": "integer"},
                                        "height": {"type": "integer"},
                                        "precision": {"enum": ["fp32"]},
                                        "batch_size": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {"description": "queued: the job", **json_response},
                        "400": {
                            "description": "errors by field",
                            "content": {"application/json": {"schema": ERRORS}},
                        },
                        "401": {"description": "sign in first"},
                        "429": {"description": "quota or rate limit"},
                    },
                }
            },
            "/api/v1/jobs/{id}": {
                "get": {
                    "summary": "A job's progress, images and verdict (owner or staff)",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "the job", **json_response},
                        "404": {"description": "no such job"},
                    },
                }
            },
        },
    }
