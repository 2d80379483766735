"""The license endpoint authenticates in its own single query (key and standing checks
together); it must refuse exactly as accounts.wcp.wcp_authenticate does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.licensing.selectors.caller import LicenseCaller, license_caller
from accounts.services.api_keys import api_key_revoke
from accounts.services.organizations import environment_set_status, project_create
from accounts.wcp import WcpCaller, WcpRefusal, wcp_authenticate


def _case(name: str, tenant, other_tenant) -> tuple[str, str, str]:
    key, org, project = tenant.api_key, "acme", "website"
    api_key = tenant.production.api_keys.get()
    if name == "missing":
        key = ""
    elif name == "malformed":
        key = "cpk_short"
    elif name == "unknown":
        key = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    elif name == "revoked":
        api_key_revoke(api_key=api_key)
    elif name == "expired":
        api_key.expires_at = timezone.now() - dt.timedelta(seconds=1)
        api_key.save(update_fields=["expires_at"])
    elif name == "disabled":
        environment_set_status(environment=tenant.production, enabled=False)
    elif name == "other_org_key":
        key = other_tenant.api_key
    elif name == "other_project":
        project_create(organization=tenant.organization, slug="shop", name="Shop")
        project = "shop"
    elif name == "other_org_slug":
        org = "globex"
    return key, org, project


@pytest.mark.parametrize(
    "name",
    [
        "ok",
        "missing",
        "malformed",
        "unknown",
        "revoked",
        "expired",
        "disabled",
        "other_org_key",
        "other_project",
        "other_org_slug",
    ],
)
def test_same_answers_as_wcp_authenticate(name, tenant, other_tenant):
    key, org, project = _case(name, tenant, other_tenant)

    expected = wcp_authenticate(key, org_slug=org, project_slug=project)
    actual = license_caller(plaintext=key, org_slug=org, project_slug=project)

    if isinstance(expected, WcpCaller):
        assert isinstance(actual, LicenseCaller)
        assert actual.api_key_id == expected.api_key.pk
        assert actual.environment_id == expected.environment.pk
    else:
        assert isinstance(expected, WcpRefusal)
        assert actual == expected
