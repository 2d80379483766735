"""Passwords: Django's four validators are configured, and sign-up (allauth) refuses what
they refuse, creating nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Organization, User

pytestmark = pytest.mark.django_db


def test_the_four_validators_are_configured():
    assert [v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS] == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]


def _sign_up(password: str, email: str = "nora@example.com"):
    return Client().post(
        "/accounts/signup/",
        {
            "organization": "Nora's shop",
            "email": email,
            "password1": password,
            "password2": password,
        },
    )


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("48120937560123", "entirely numeric"),
        ("nora.example.com", "too similar"),
    ],
)
def test_sign_up_refuses_a_weak_password_and_creates_nothing(password, says):
    response = _sign_up(password)
    assert response.status_code == 200  # the form again, with the error
    assert says in response.content.decode()
    assert not User.objects.exists()
    assert not Organization.objects.exists()


def test_sign_up_accepts_a_strong_password():
    assert _sign_up("a long and unusual passphrase").status_code == 302
    assert User.objects.get().email == "nora@example.com"
