"""Personal environments of developer seat holders."""

import base64
import json

import pytest
from django.test import override_settings

from accounts import tokens
from accounts.models import ApiKey, Environment, EnvironmentKind, EnvironmentStatus, Membership
from accounts.selectors.api_keys import api_key_check
from accounts.services import personal, seats, team

pytestmark = pytest.mark.django_db


def give_seat(tenant, user):
    m = Membership.objects.get(organization=tenant.organization, user=user)
    owner = Membership.objects.get(organization=tenant.organization, user=tenant.owner)
    return seats.seat_assign(project=tenant.project, membership=m, by=owner)


def test_seat_holder_gets_a_personal_environment_with_key_and_wcp_value(tenant):
    give_seat(tenant, tenant.member)
    issued = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    env = issued.environment
    assert (env.kind, env.owner, env.name, issued.created) == (
        EnvironmentKind.PERSONAL,
        tenant.member,
        "dev",
        True,
    )
    assert api_key_check(issued.plaintext).api_key == issued.api_key
    decoded = json.loads(base64.b64decode(issued.wcp_project_environment()))
    assert decoded == {
        "id": str(env.pk),
        "apiKey": issued.plaintext,
        "org": {"id": "acme"},
        "project": {"id": "website"},
    }


def test_asking_again_rotates_the_key(tenant):
    give_seat(tenant, tenant.member)
    first = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    second = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    assert second.environment.pk == first.environment.pk
    assert second.created is False
    assert second.plaintext != first.plaintext
    assert api_key_check(first.plaintext).problem.value == "revoked"
    assert api_key_check(second.plaintext).ok
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 1


def test_without_a_seat_no_personal_environment(tenant):
    with pytest.raises(team.TeamError) as refused:
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name="dev"
        )
    assert (refused.value.status, refused.value.code) == (403, "no_developer_seat")
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 0


def test_freed_seat_stops_new_personal_environments(tenant):
    seat = give_seat(tenant, tenant.member)
    owner = Membership.objects.get(organization=tenant.organization, user=tenant.owner)
    seats.seat_free(project=tenant.project, membership=seat.membership, by=owner)
    with pytest.raises(team.TeamError, match="no developer seat"):
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name="dev"
        )
    assert ApiKey.objects.filter(environment__kind=EnvironmentKind.PERSONAL).count() == 0


@override_settings(PERSONAL_ENVIRONMENTS_PER_SEAT=2)
def test_at_most_the_configured_number_per_seat(tenant):
    give_seat(tenant, tenant.member)
    for name in ("dev", "test"):
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name=name
        )
    with pytest.raises(team.TeamError) as refused:
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name="third"
        )
    assert refused.value.message == (
        "A developer seat allows at most 2 personal environments per project; you have "
        "dev, test. Ask again with one of those names."
    )
    assert refused.value.status == 409
    # An existing one can still be asked for again.
    personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 2


def test_default_limit_is_three(tenant, settings):
    assert settings.PERSONAL_ENVIRONMENTS_PER_SEAT == 3


def test_two_developers_can_both_have_dev(tenant):
    give_seat(tenant, tenant.member)
    give_seat(tenant, tenant.admin)
    a = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    b = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.admin, name="dev"
    )
    assert a.environment.pk != b.environment.pk


@pytest.mark.parametrize("name", ["", "Dev", "-dev", "dev env", "a" * 41, "dév"])
def test_bad_names_are_refused(tenant, name):
    give_seat(tenant, tenant.member)
    with pytest.raises(team.TeamError) as refused:
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name=name
        )
    assert refused.value.code == "invalid_name"
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 0


def test_disabled_personal_environment_is_not_handed_out_again(tenant):
    give_seat(tenant, tenant.member)
    issued = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    Environment.objects.filter(pk=issued.environment.pk).update(status=EnvironmentStatus.DISABLED)
    with pytest.raises(team.TeamError) as refused:
        personal.personal_environment_get_or_create(
            project=tenant.project, user=tenant.member, name="dev"
        )
    assert refused.value.code == "environment_disabled"
    assert ApiKey.objects.filter(environment=issued.environment).count() == 1


def test_keys_are_stored_as_digests_only(tenant):
    give_seat(tenant, tenant.member)
    issued = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    row = ApiKey.objects.filter(pk=issued.api_key.pk).values().get()
    assert row["digest"] == tokens.digest(issued.plaintext)
    assert all(issued.plaintext not in str(value) for value in row.values())
