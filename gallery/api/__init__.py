"""Seedbank's JSON API on django-ninja: the OpenAPI document is generated from the schemas
(gallery/api/schemas.py, the render request from the recipe type) at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from gallery.api import favourites, provenance, renders, search

api = NinjaAPI(
    title="Seedbank API",
    version="1",
    description="Search recipes and images; check a picture's provenance; submit recipes to "
    "render. Writes use session authentication with the X-CSRFToken header.",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url=None,
)
api.add_router("", search.router)
api.add_router("", renders.router)
api.add_router("", provenance.router)
api.add_router("", favourites.router)

# What pydantic says in its own words, said the way the HTML forms say it.
_MESSAGES = {
    "int_parsing": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "float_parsing": "Enter a number.",
    "missing": "This field is required.",
    "string_type": "Enter text.",
    "model_type": "Send a JSON object.",
    "model_attributes_type": "Send a JSON object.",
    "dict_type": "Send a JSON object.",
    "int_type": "Enter a whole number.",
    "float_type": "Enter a number.",
    "finite_number": "Enter a finite number (not NaN or Infinity).",
    "bool_type": "Enter true or false.",
    "extra_forbidden": "Unknown field: a Seedbank recipe has no such field (see the OpenAPI "
    "document at /api/v1/openapi.json).",
    "value_error": "",  # our own validators' messages are already in people's words
}


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for error in errors:
        # loc is ("body", "<param>", field, ...) or ("query", field): the field is what people see.
        names = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        body = bool(error.get("loc")) and error["loc"][0] == "body"
        if body:  # ("body", "<param>"): the body as a whole is wrong (not an object)
            field = names[1] if len(names) > 1 else "__all__"
        else:
            field = names[0] if names else "__all__"
        message = _MESSAGES.get(error.get("type", "")) or error.get("msg", "Invalid value.")
        message = message.removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":  # name it, nested ones by their path
            message = f"{'.'.join(names[1:]) or field}: {message}"
        by_field.setdefault(field, []).append(message)
    return by_field


@api.exception_handler(ValidationError)
def invalid_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, {"errors": _field_errors(exc.errors)}, status=400)


@api.exception_handler(HttpError)
def refused(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:  # the body could not be parsed (not JSON, too deep, too long)
        body: dict[str, Any] = {"errors": {"__all__": ["The body is not valid JSON."]}}
    else:
        body = {"error": str(exc)}
    return api.create_response(request, body, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def signed_out(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    match = request.resolver_match
    what = _SIGN_IN_FOR.get((match.url_name or "") if match else "")
    message = f"Sign in to {what or 'generate images'}."
    return api.create_response(request, {"error": message}, status=401)


# What a signed-out request to an endpoint that needs an account was trying to do.
_SIGN_IN_FOR = {
    "api_image_like": "like images",
    "api_image_unlike": "like images",
    "api_favourites": "see your favourites",
    "api_preferences": "see your preferences",
    "api_preferences_set": "set your preferences",
}
