"""`manage.py provision`: idempotent by slug, keys printed only when issued, bad specs
change nothing."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import (
    ApiKey,
    Contract,
    ContractStatus,
    Environment,
    Membership,
    Organization,
    Project,
    User,
)
from accounts.selectors.api_keys import api_key_check

pytestmark = pytest.mark.django_db

SPEC = {
    "organization": {"slug": "acme", "name": "Acme Inc"},
    "owner_email": "Owner@Acme.test",
    "contract": {
        "plan": "business",
        "starts_on": "2026-11-01",
        "ends_on": "2027-11-01",
        "api_calls_per_period": 1000000,
        "seats_per_environment": 10,
        "tenants_per_environment": 3,
        "developer_seats": 5,
        "nonprod_daily_api_calls": 5000,
        "features": {
            "advancedPublishingWorkflow": True,
            "advancedAccessControlLayer": {"teams": True, "folderLevelPermissions": True},
            "auditLogs": {"enabled": True},
        },
        "overage_policy": {
            "api_calls": "allow",
            "seats": "block",
            "tenants": {"allow_up_to": 1.25},
        },
    },
    "projects": [
        {
            "slug": "website",
            "name": "Website",
            "environments": [
                {"name": "production", "kind": "production"},
                {"name": "ci", "kind": "cicd"},
            ],
        }
    ],
}


def run(spec, tmp_path=None):
    out = io.StringIO()
    if tmp_path is None:
        import sys

        stdin, sys.stdin = sys.stdin, io.StringIO(json.dumps(spec))
        try:
            call_command("provision", "-", stdout=out)
        finally:
            sys.stdin = stdin
    else:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        call_command("provision", str(path), stdout=out)
    return json.loads(out.getvalue())


def counts():
    return {
        model.__name__: model.objects.count()
        for model in (Organization, User, Membership, Contract, Project, Environment, ApiKey)
    }


def test_provision_creates_everything_and_prints_working_keys(tmp_path):
    result = run(SPEC, tmp_path)
    organization = Organization.objects.get(slug="acme")
    assert result["organization"] == {"id": organization.pk, "slug": "acme"}
    [project] = result["projects"]
    assert project["slug"] == "website"
    assert [(e["name"], e["kind"]) for e in project["environments"]] == [
        ("production", "production"),
        ("ci", "cicd"),
    ]
    for env in project["environments"]:
        check = api_key_check(env["api_key"])
        assert check.ok and check.api_key.environment_id == env["id"]
    membership = Membership.objects.get(organization=organization)
    assert (membership.user.email, membership.role) == ("owner@acme.test", "owner")
    contract = Contract.objects.get(organization=organization, status=ContractStatus.ACTIVE)
    assert contract.seats_per_environment == 10
    assert contract.cap_for("tenants") == 3  # floor(3 x 1.25)
    assert contract.cap_for("api_calls") is None
    assert (
        contract.aacl_teams,
        contract.aacl_private_files,
        contract.aacl_folder_level_permissions,
    ) == (
        True,
        False,
        True,
    )
    assert (
        contract.audit_logs
        and contract.advanced_publishing_workflow
        and not contract.record_locking
    )


def test_provision_is_idempotent_and_prints_keys_only_once(tmp_path):
    first = run(SPEC, tmp_path)
    before = counts()
    second = run(SPEC)  # from stdin this time
    assert counts() == before
    assert second["organization"] == first["organization"]
    for env in second["projects"][0]["environments"]:
        assert "api_key" not in env
    assert [e["id"] for e in second["projects"][0]["environments"]] == [
        e["id"] for e in first["projects"][0]["environments"]
    ]


def test_changed_contract_terms_supersede_the_active_contract(tmp_path):
    run(SPEC, tmp_path)
    changed = json.loads(json.dumps(SPEC))
    changed["contract"]["seats_per_environment"] = 25
    changed["projects"][0]["environments"].append({"name": "staging", "kind": "cicd"})
    result = run(changed)
    contracts = Contract.objects.filter(organization__slug="acme")
    assert sorted(contracts.values_list("status", "seats_per_environment")) == [
        ("active", 25),
        ("superseded", 10),
    ]
    keys = {e["name"]: e.get("api_key") for e in result["projects"][0]["environments"]}
    assert keys["production"] is None and keys["ci"] is None and keys["staging"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s["organization"].update(slug="Not A Slug"), "organization.slug"),
        (lambda s: s.update(owner_email="nobody"), "owner_email: must be an email"),
        (lambda s: s["contract"].update(ends_on="2026-01-01"), "contract.ends_on: must be after"),
        (
            lambda s: s["contract"].update(seats_per_environment=-1),
            "contract.seats_per_environment",
        ),
        (lambda s: s["contract"].update(bogus=1), "contract.bogus: unknown field"),
        (
            lambda s: s["contract"]["overage_policy"].update(seats={"allow_up_to": 0.5}),
            "allow_up_to: must be a number from 1",
        ),
        (
            lambda s: s["projects"][0]["environments"].append({"name": "p2", "kind": "production"}),
            "exactly one production",
        ),
        (
            lambda s: s["projects"][0]["environments"].append({"name": "me", "kind": "personal"}),
            "kind: must be 'production' or 'cicd'",
        ),
    ],
)
def test_bad_spec_is_refused_with_a_clear_error_and_changes_nothing(mutate, message, tmp_path):
    spec = json.loads(json.dumps(SPEC))
    mutate(spec)
    with pytest.raises(CommandError, match=message):
        run(spec, tmp_path)
    assert counts() == {name: 0 for name in counts()}


def test_unreadable_or_invalid_json_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("provision", str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("provision", str(bad))
