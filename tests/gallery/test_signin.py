"""Accounts (issue 26): sign-in throttling per account and per address (django-axes,
gallery/signin.py), and sign-up refusing common and all-digit passwords."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

LOCKED = (
    "Too many failed sign-ins for this account or from your address: signing in is paused for "
    "15 minutes after the last failed try. Try again then."
)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-for-tests-3")


def sign_in(client, username: str, password: str, address: str = "127.0.0.1", **headers):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address,
        **headers,
    )  # fmt: skip


def signed_in_as(client) -> str | None:
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id).get_username() if user_id else None


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(client, user) -> None:
    for _ in range(4):
        assert sign_in(client, "ada", "wrong").status_code == 200  # the form again, with why
    fifth = sign_in(client, "ada", "wrong")
    assert fifth.status_code == 429 and fifth["Retry-After"] == "900"
    right = sign_in(client, "ada", "pw-for-tests-1")
    assert right.status_code == 429 and right["Retry-After"] == "900"
    assert LOCKED in right.content.decode()
    assert signed_in_as(client) is None


def test_the_lock_is_per_account_and_per_address(client, user, bob) -> None:
    for _ in range(5):
        sign_in(client, "ada", "wrong", "10.0.0.1")
    # The account is locked from every address...
    assert sign_in(client, "ada", "pw-for-tests-1", "10.0.0.2").status_code == 429
    # ...and the address for every account...
    assert sign_in(client, "bob", "pw-for-tests-3", "10.0.0.1").status_code == 429
    # ...while another account from another address still signs in.
    assert sign_in(client, "bob", "pw-for-tests-3", "10.0.0.2").status_code == 302
    assert signed_in_as(client) == "bob"


def test_guessing_many_accounts_from_one_address_is_locked(client, user, bob) -> None:
    for name in ("carol", "dave", "erin", "frank", "grace"):
        sign_in(client, name, "wrong", "10.0.0.7")
    assert sign_in(client, "ada", "pw-for-tests-1", "10.0.0.7").status_code == 429
    assert sign_in(client, "ada", "pw-for-tests-1", "10.0.0.8").status_code == 302


def test_a_successful_sign_in_forgives_that_accounts_failures(client, user) -> None:
    for _ in range(4):
        sign_in(client, "ada", "wrong")
    assert sign_in(client, "ada", "pw-for-tests-1").status_code == 302
    client.logout()
    for _ in range(4):
        assert sign_in(client, "ada", "wrong").status_code == 200  # counting from 0 again
    assert sign_in(client, "ada", "pw-for-tests-1").status_code == 302


def test_signing_into_ones_own_account_does_not_forgive_guesses_at_another(
    client, user, bob
) -> None:
    for _ in range(4):
        sign_in(client, "ada", "wrong", "10.0.0.3")
    assert sign_in(client, "bob", "pw-for-tests-3", "10.0.0.3").status_code == 302
    client.logout()
    assert sign_in(client, "ada", "wrong", "10.0.0.3").status_code == 429


def test_the_lock_ends_after_the_cool_off(client, user) -> None:
    for _ in range(5):
        sign_in(client, "ada", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(client, "ada", "pw-for-tests-1").status_code == 302


@override_settings(SEEDBANK_CLIENT_IP_HEADER="X-Forwarded-For")
def test_behind_a_proxy_the_address_is_the_one_the_proxy_vouches_for(client, user, bob) -> None:
    for _ in range(5):
        sign_in(client, "ada", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5")
    # Same proxy peer (127.0.0.1), another client: not locked by the first one's failures.
    ok = sign_in(client, "bob", "pw-for-tests-3", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert ok.status_code == 302
    client.logout()
    refused = sign_in(client, "bob", "pw-for-tests-3", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5")
    assert refused.status_code == 429


def test_the_lockout_is_said_in_the_readers_language(client, user) -> None:
    for _ in range(5):
        sign_in(client, "ada", "wrong")
    page = sign_in(client, "ada", "pw-for-tests-1", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 429 and "15" in page.content.decode()
    assert "Too many failed sign-ins" not in page.content.decode()


def test_scripts_signing_in_are_throttled_the_same_way_and_answered_in_json(client, user):
    """The JSON API authenticates by the session (django_auth): a script signs in at
    /accounts/login/ like a browser, and is locked out like one, in JSON when it asks."""
    for _ in range(5):
        sign_in(client, "ada", "wrong", HTTP_ACCEPT="application/json")
    refused = sign_in(client, "ada", "pw-for-tests-1", HTTP_ACCEPT="application/json")
    assert refused.status_code == 429 and refused["Retry-After"] == "900"
    assert refused.json() == {"error": LOCKED}
    assert client.post("/api/v1/renders", "{}", content_type="application/json").status_code == 401


def test_the_admin_sign_in_is_throttled_too(client, staff_user) -> None:
    for _ in range(5):
        client.post("/admin/login/", {"username": "grace", "password": "wrong"})
    refused = client.post("/admin/login/", {"username": "grace", "password": "pw-for-tests-2"})
    assert refused.status_code == 429
    assert signed_in_as(client) is None


def test_signup_still_signs_in_a_new_account(client) -> None:
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"},
    )
    assert response.status_code == 302 and signed_in_as(client) == "newbie"


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        ("12345678", ["This password is too common.", "This password is entirely numeric."]),
        ("password", ["This password is too common."]),
        ("84736251", ["This password is entirely numeric."]),
    ],
)
def test_sign_up_refuses_common_and_all_digit_passwords(client, password, messages) -> None:
    response = client.post(
        "/accounts/signup/", {"username": "newbie", "password1": password, "password2": password}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["password2"] == messages
    assert not get_user_model().objects.filter(username="newbie").exists()
