"""schemathesis against the generated OpenAPI document, over real HTTP (pytest-django's live
server): every operation, signed in, with a fixed example budget and seed; no response is a
server error."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gallery.api import api

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
# Valid and invalid inputs (wrong types, out-of-range values, NUL bytes), deterministic.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], allow_x00=True, deterministic=True
)
EXAMPLES_PER_OPERATION = 60


@pytest.fixture
def signed_in(live_server, django_user_model, model_version) -> requests.Session:
    django_user_model.objects.create_user(username="fuzz", password="fuzz-password-1")
    session = requests.Session()
    login = f"{live_server.url}/accounts/login/"
    session.get(login, timeout=30)
    session.post(
        login,
        data={"username": "fuzz", "password": "fuzz-password-1",
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": login}, timeout=30,
    )  # fmt: skip
    assert "sessionid" in session.cookies
    session.headers.update(
        {"X-CSRFToken": session.cookies["csrftoken"], "Referer": f"{live_server.url}/"}
    )
    return session


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_no_operation_answers_a_server_error(case, live_server, signed_in) -> None:
    case.call_and_validate(
        base_url=live_server.url, session=signed_in, checks=[not_a_server_error], timeout=30
    )
