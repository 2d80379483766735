"""GET /orgs/{orgId}/projects/{projectId}/license: the CMS client's license fetch."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from accounts.licensing import services as licensing_services
from accounts.models import (
    Contract,
    DeveloperSeat,
    License,
    LicenseKind,
    Membership,
    TenantLimitType,
)
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.organizations import (
    contract_activate,
    contract_end,
    environment_set_status,
    project_create,
)
from tests.accounts.licensing_support import (
    decode_license,
    decode_payload,
    fetch,
    license_url,
    make_personal,
)
from tests.conftest import make_tenant


def test_answer_is_base64_json_exactly_as_the_cms_expects(client, db):
    tenant = make_tenant(
        "acme",
        seats_per_environment=12,
        tenants_per_environment=4,
        tenants_type=TenantLimitType.SEAT_BASED,
        advanced_publishing_workflow=True,
        aacl_teams=True,
        aacl_private_files=False,
        aacl_folder_level_permissions=True,
        audit_logs=False,
        record_locking=True,
    )

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"license", "token"}
    assert decode_license(body) == {
        "orgId": "acme",
        "projectId": "website",
        "package": {
            "features": {
                "seats": {"enabled": True, "options": {"maxCount": 12}},
                "multiTenancy": {
                    "enabled": True,
                    "options": {"maxCount": {"type": "seatBased", "count": 4}},
                },
                "advancedPublishingWorkflow": {"enabled": True},
                "advancedAccessControlLayer": {
                    "enabled": True,
                    "options": {
                        "teams": True,
                        "privateFiles": False,
                        "folderLevelPermissions": True,
                    },
                },
                "auditLogs": {"enabled": False},
                "recordLocking": {"enabled": True},
            }
        },
    }


def test_features_off_and_fixed_tenants(client, db):
    tenant = make_tenant("acme", seats_per_environment=3, tenants_per_environment=1)

    document = decode_license(fetch(client, license_url(tenant), tenant.api_key).json())

    features = document["package"]["features"]
    assert features["multiTenancy"]["options"]["maxCount"] == {"type": "fixed", "count": 1}
    assert features["advancedAccessControlLayer"] == {
        "enabled": False,
        "options": {"teams": False, "privateFiles": False, "folderLevelPermissions": False},
    }
    assert features["advancedPublishingWorkflow"] == {"enabled": False}
    assert features["auditLogs"] == {"enabled": False}
    assert features["recordLocking"] == {"enabled": False}


def test_token_claims_and_record(client, db, settings):
    settings.LICENSE_ISSUER = "https://cp.example.com"
    tenant = make_tenant("acme", seats_per_environment=12, tenants_per_environment=4)
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC), tick=False):
        tenant.organization.contracts.update(
            starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 1)
        )
        body = fetch(client, license_url(tenant), tenant.api_key).json()

    claims = decode_payload(body["token"])
    issued = int(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC).timestamp())
    assert claims == {
        "iss": "https://cp.example.com",
        "sub": "acme/website",
        "jti": claims["jti"],
        "iat": issued,
        "nbf": issued,
        "exp": issued + 30 * 86400,
        "license": "project",
        "org": "acme",
        "project": "website",
        "environment": str(tenant.production.pk),
        "environmentKind": "production",
        "features": decode_license(body)["package"]["features"],
        "limits": {"seats": 12, "tenants": {"type": "fixed", "count": 4}},
    }
    assert len(claims["jti"]) >= 22
    record = License.objects.get()
    assert record.jti == claims["jti"]
    assert record.kind == LicenseKind.PROJECT
    assert record.subject == "acme/website"
    assert record.environment == tenant.production
    assert record.developer is None
    assert record.issued_at == dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    assert record.expires_at == dt.datetime(2026, 12, 20, 10, 0, tzinfo=dt.UTC)
    assert record.revoked_at is None
    assert record.claims == claims


def test_expiry_never_outlives_the_contract(client, db):
    tenant = make_tenant("acme")
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC), tick=False):
        tenant.organization.contracts.update(
            starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 11, 25)
        )
        body = fetch(client, license_url(tenant), tenant.api_key).json()

    assert decode_payload(body["token"])["exp"] == int(
        dt.datetime(2026, 11, 25, tzinfo=dt.UTC).timestamp()
    )


def test_personal_license_is_bound_to_environment_and_developer(client, tenant, settings):
    settings.LICENSE_PERSONAL_EXPIRY_DAYS = 7
    personal = make_personal(tenant)

    response = fetch(client, license_url(tenant), personal.api_key)

    assert response.status_code == 200
    claims = decode_payload(response.json()["token"])
    assert claims["license"] == "personal"
    assert claims["sub"] == f"acme/website/environments/{personal.environment.pk}"
    assert claims["environment"] == str(personal.environment.pk)
    assert claims["environmentKind"] == "personal"
    assert claims["developer"] == str(personal.developer.pk)
    assert claims["exp"] - claims["iat"] == 7 * 86400
    record = License.objects.get()
    assert record.kind == LicenseKind.PERSONAL
    assert record.developer == personal.developer
    assert record.environment == personal.environment


# --- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        (None, 401, "No API key: send the environment's API key in the Authorization header."),
        ("nonsense", 401, "The API key is malformed: expected cpk_<prefix>_<secret>."),
        (
            "cpk_aaaaaaaaaaaa_" + "A" * 43,
            401,
            "The API key is not valid.",
        ),
    ],
)
def test_key_problems_answer_401_with_a_message(client, tenant, key, status, message):
    response = fetch(client, license_url(tenant), key)

    assert response.status_code == status
    assert response.json() == {"message": message}
    assert License.objects.count() == 0


def test_revoked_key_401(client, tenant):
    api_key_revoke(api_key=tenant.production.api_keys.get())

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 401
    assert response.json() == {"message": "The API key has been revoked."}
    assert License.objects.count() == 0


def test_bearer_prefix_is_tolerated(client, tenant):
    response = fetch(client, license_url(tenant), f"Bearer {tenant.api_key}")

    assert response.status_code == 200


def test_disabled_environment_403(client, tenant):
    fetch(client, license_url(tenant), tenant.api_key)  # cached answer exists now
    environment_set_status(environment=tenant.production, enabled=False)

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 403
    assert response.json() == {"message": "The environment of this API key is disabled."}
    assert License.objects.count() == 1


def test_contract_ended_403_even_with_a_cached_answer(client, tenant):
    assert fetch(client, license_url(tenant), tenant.api_key).status_code == 200
    contract_end(contract=tenant.organization.contracts.get())

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": "The contract of organization 'acme' has ended: no license can be issued."
    }
    assert License.objects.count() == 1


def test_contract_past_its_end_date_403(client, tenant):
    contract = tenant.organization.contracts.get()
    with time_machine.travel(
        dt.datetime.combine(contract.ends_on, dt.time(0, 0, 1), tzinfo=dt.UTC), tick=False
    ):
        response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": f"The contract of organization 'acme' ended on {contract.ends_on.isoformat()}: "
        "no license can be issued."
    }
    assert License.objects.count() == 0


def test_no_contract_403(client, tenant):
    Contract.objects.all().delete()

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": "Organization 'acme' has no active contract: no license can be issued."
    }


def test_a_new_contract_is_licensed_at_once(client, tenant):
    first = fetch(client, license_url(tenant), tenant.api_key).json()
    contract_activate(
        organization=tenant.organization,
        plan="enterprise",
        starts_on=timezone.now().date(),
        ends_on=timezone.now().date() + dt.timedelta(days=30),
        seats_per_environment=50,
        audit_logs=True,
    )

    second = fetch(client, license_url(tenant), tenant.api_key).json()

    features = decode_license(second)["package"]["features"]
    assert features["seats"]["options"]["maxCount"] == 50
    assert features["auditLogs"] == {"enabled": True}
    assert second["token"] != first["token"]
    assert License.objects.count() == 2


def test_seat_freed_403_even_with_a_cached_answer(client, tenant):
    personal = make_personal(tenant)
    assert fetch(client, license_url(tenant), personal.api_key).status_code == 200
    # The team helper's seat_free service sets freed_at; licensing only reads it.
    DeveloperSeat.objects.filter(pk=personal.seat.pk).update(freed_at=timezone.now())

    response = fetch(client, license_url(tenant), personal.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": "The developer's seat on project 'website' has been freed: this personal "
        "environment's license has stopped."
    }
    assert License.objects.count() == 1


def test_member_removed_403(client, tenant):
    personal = make_personal(tenant)
    assert fetch(client, license_url(tenant), personal.api_key).status_code == 200
    Membership.objects.filter(organization=tenant.organization, user=personal.developer).delete()

    response = fetch(client, license_url(tenant), personal.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": "The developer of this personal environment is no longer a member of "
        "organization 'acme': its license has stopped."
    }
    assert License.objects.count() == 1


def test_seat_on_another_project_does_not_count(client, tenant):
    personal = make_personal(tenant)
    other = project_create(organization=tenant.organization, slug="shop", name="Shop")
    DeveloperSeat.objects.filter(pk=personal.seat.pk).update(freed_at=timezone.now())
    DeveloperSeat.objects.create(membership=personal.seat.membership, project=other)

    response = fetch(client, license_url(tenant), personal.api_key)

    assert response.status_code == 403
    assert License.objects.count() == 0


def test_another_organizations_key_is_refused_403(client, tenant, other_tenant):
    response = fetch(client, license_url(tenant), other_tenant.api_key)

    assert response.status_code == 403
    assert response.json() == {
        "message": "This API key does not belong to an environment of that organization and project."
    }
    assert License.objects.count() == 0


def test_another_project_of_the_same_org_is_refused_403(client, tenant):
    project_create(organization=tenant.organization, slug="shop", name="Shop")

    response = fetch(client, "/orgs/acme/projects/shop/license", tenant.api_key)

    assert response.status_code == 403
    assert License.objects.count() == 0


def test_post_is_405_with_a_message(client, tenant):
    response = client.post(license_url(tenant), headers={"authorization": tenant.api_key})

    assert response.status_code == 405
    assert response.json() == {"message": "Use GET to fetch a license."}


def test_signing_failure_answers_503_with_retry_after(client, tenant, settings):
    settings.LICENSE_SIGNING_KEY = "not a pem"

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {"message": "Licenses cannot be signed right now; retry later."}
    assert License.objects.count() == 0


# --- caching ------------------------------------------------------------------------------------
def test_cached_answer_creates_no_duplicate_record(client, tenant):
    answers = [fetch(client, license_url(tenant), tenant.api_key).json() for _ in range(5)]

    assert all(answer == answers[0] for answer in answers)
    record = License.objects.get()
    assert record.jti == decode_payload(answers[0]["token"])["jti"]


def test_cache_expires_after_license_cache_seconds(client, tenant, settings):
    settings.LICENSE_CACHE_SECONDS = 300
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        first = fetch(client, license_url(tenant), tenant.api_key).json()
    with time_machine.travel(start + dt.timedelta(seconds=299), tick=False):
        assert fetch(client, license_url(tenant), tenant.api_key).json() == first
    with time_machine.travel(start + dt.timedelta(seconds=301), tick=False):
        third = fetch(client, license_url(tenant), tenant.api_key).json()

    assert third["token"] != first["token"]
    assert License.objects.count() == 2


def test_cache_disabled_signs_every_time(client, tenant, settings):
    fetch(client, license_url(tenant), tenant.api_key)  # cached while caching was on
    settings.LICENSE_CACHE_SECONDS = 0

    for _ in range(3):
        fetch(client, license_url(tenant), tenant.api_key)

    assert License.objects.count() == 4


def test_each_environment_gets_its_own_license(client, tenant):
    personal = make_personal(tenant)

    production = fetch(client, license_url(tenant), tenant.api_key).json()
    developer = fetch(client, license_url(tenant), personal.api_key).json()

    assert production["token"] != developer["token"]
    assert License.objects.count() == 2


def test_revoked_cached_license_is_replaced_at_once(client, tenant):
    first = fetch(client, license_url(tenant), tenant.api_key).json()
    record = License.objects.get()
    # Revoked behind the service's back (another process): the hit still checks it.
    License.objects.filter(pk=record.pk).update(revoked_at=timezone.now())

    second = fetch(client, license_url(tenant), tenant.api_key).json()

    assert second["token"] != first["token"]
    assert License.objects.filter(revoked_at__isnull=True).count() == 1


def test_revoke_service_is_idempotent_and_drops_the_cache(client, tenant, staff_user):
    first = fetch(client, license_url(tenant), tenant.api_key).json()
    record = License.objects.get()

    licensing_services.license_revoke(license=record, by=staff_user)
    revoked_at = License.objects.get(pk=record.pk).revoked_at
    licensing_services.license_revoke(license=record)

    record.refresh_from_db()
    assert record.revoked_at == revoked_at
    assert record.revoked_by == staff_user
    assert fetch(client, license_url(tenant), tenant.api_key).json()["token"] != first["token"]


def test_cached_request_costs_one_query(client, tenant, django_assert_num_queries):
    fetch(client, license_url(tenant), tenant.api_key)

    # The key with its environment, project and organization, the contract in force and
    # the revocation of the cached license: every standing check, in one query.
    with django_assert_num_queries(1):
        assert fetch(client, license_url(tenant), tenant.api_key).status_code == 200


def test_personal_cached_request_costs_one_query(client, tenant, django_assert_num_queries):
    personal = make_personal(tenant)
    fetch(client, license_url(tenant), personal.api_key)

    # ... plus the developer's membership and seat, in the same query.
    with django_assert_num_queries(1):
        assert fetch(client, license_url(tenant), personal.api_key).status_code == 200


def test_cache_miss_costs_a_fixed_number_of_queries(client, tenant, django_assert_num_queries):
    fetch(client, license_url(tenant), tenant.api_key)  # registers the signing key
    other = api_key_issue(environment=tenant.production).plaintext

    # caller, last-used touch, environment, contract, signing key, license insert and its
    # audit event, inside a savepoint (SAVEPOINT/RELEASE: the test runs in a transaction)
    with django_assert_num_queries(9):
        assert fetch(client, license_url(tenant), other).status_code == 200


def test_a_key_of_a_disabled_user_is_member_removed(client, tenant):
    personal = make_personal(tenant)
    type(personal.developer).objects.filter(pk=personal.developer.pk).update(is_active=False)

    response = fetch(client, license_url(tenant), personal.api_key)

    assert response.status_code == 403
    assert "no longer a member" in response.json()["message"]


def test_unreachable_cache_still_answers(client, tenant, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }

    response = fetch(client, license_url(tenant), tenant.api_key)

    assert response.status_code == 200
    assert License.objects.count() == 1


def test_key_last_use_is_recorded_at_most_once_a_minute(client, tenant):
    api_key = tenant.production.api_keys.get()
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        fetch(client, license_url(tenant), tenant.api_key)
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        fetch(client, license_url(tenant), tenant.api_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at == start

    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        fetch(client, license_url(tenant), tenant.api_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at == start + dt.timedelta(seconds=61)
