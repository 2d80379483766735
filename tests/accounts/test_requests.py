"""signed_in_user: the person behind a request on a guarded route, checked."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from accounts.requests import signed_in_user
from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_signed_in_person_is_the_requests_user(rf):
    person = UserFactory()
    request = rf.get("/account/")
    request.user = person
    assert signed_in_user(request) == person


def test_an_anonymous_request_is_refused_rather_than_taken_for_a_person(rf):
    request = rf.get("/account/")
    request.user = AnonymousUser()
    with pytest.raises(PermissionDenied, match="Sign in first"):
        signed_in_user(request)
