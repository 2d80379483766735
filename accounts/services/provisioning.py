"""Create or update a whole customer from one JSON spec (operators, demos, automation).

The spec is validated whole before anything is written, and applied in one transaction,
so a bad spec changes nothing. Applying the same spec twice changes nothing either:
everything is matched by slug (organization, project), email (owner) or name
(environment); API keys are issued only for environments that have none yet, and only
keys issued by this run appear in the output.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.models import (
    METRICS,
    Contract,
    ContractStatus,
    Environment,
    EnvironmentKind,
    Organization,
    OverageMode,
    Project,
    Role,
    TenantLimitType,
)
from accounts.services.api_keys import api_key_issue
from accounts.services.organizations import (
    contract_activate,
    environment_create,
    membership_set,
    organization_create,
    project_create,
    user_get_or_create,
)


class SpecError(Exception):
    """The spec is wrong; `errors` lists every problem as `path: message`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# License-document feature names -> Contract fields.
FEATURES = {
    "advancedPublishingWorkflow": "advanced_publishing_workflow",
    "auditLogs": "audit_logs",
    "recordLocking": "record_locking",
}
AACL_FEATURES = {
    "teams": "aacl_teams",
    "privateFiles": "aacl_private_files",
    "folderLevelPermissions": "aacl_folder_level_permissions",
}
LIMITS = (
    "api_calls_per_period",
    "seats_per_environment",
    "tenants_per_environment",
    "developer_seats",
    "nonprod_daily_api_calls",
)
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SPEC_KEYS = {"organization", "owner_email", "contract", "projects"}
CONTRACT_KEYS = {
    "plan",
    "starts_on",
    "ends_on",
    "tenants_type",
    "features",
    "overage_policy",
    *LIMITS,
}


@dataclass
class _Checker:
    errors: list[str] = field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(self, value: Any, path: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        for key in sorted(set(value) - allowed):
            self.fail(f"{path}.{key}", "unknown field")
        for key in sorted(required - set(value)):
            self.fail(f"{path}.{key}", "is required")
        return value

    def text(self, value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty string")
            return ""
        if pattern is not None and not pattern.match(value):
            self.fail(path, f"must match {pattern.pattern}")
        return value

    def day(self, value: Any, path: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(path, "must be a date YYYY-MM-DD")
            return None

    def count(self, value: Any, path: str) -> int | None:
        if value is None:
            return None  # unlimited
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            self.fail(path, "must be a non-negative integer or null (unlimited)")
            return None
        return value


def _parse_contract(c: _Checker, spec: Any) -> dict[str, Any]:
    spec = c.obj(spec, "contract", CONTRACT_KEYS, {"plan", "starts_on", "ends_on"})
    terms: dict[str, Any] = {"plan": c.text(spec.get("plan"), "contract.plan")}
    terms["starts_on"] = c.day(spec.get("starts_on"), "contract.starts_on")
    terms["ends_on"] = c.day(spec.get("ends_on"), "contract.ends_on")
    if terms["starts_on"] and terms["ends_on"] and terms["ends_on"] <= terms["starts_on"]:
        c.fail("contract.ends_on", "must be after starts_on")
    for name in LIMITS:
        if name in spec:
            terms[name] = c.count(spec[name], f"contract.{name}")
    if "tenants_type" in spec:
        if spec["tenants_type"] not in TenantLimitType.values:
            c.fail("contract.tenants_type", f"must be one of {TenantLimitType.values}")
        terms["tenants_type"] = spec["tenants_type"]

    features = c.obj(
        spec.get("features", {}),
        "contract.features",
        {*FEATURES, "advancedAccessControlLayer"},
        set(),
    )
    for name, column in FEATURES.items():
        if name in features:
            terms[column] = _switch(c, features[name], f"contract.features.{name}")
    if "advancedAccessControlLayer" in features:
        aacl = features["advancedAccessControlLayer"]
        path = "contract.features.advancedAccessControlLayer"
        if isinstance(aacl, bool):  # shorthand: all of it, or none of it
            terms.update({column: aacl for column in AACL_FEATURES.values()})
        else:
            aacl = c.obj(aacl, path, {*AACL_FEATURES, "enabled"}, set())
            enabled = _switch(c, aacl.get("enabled", True), f"{path}.enabled")
            for name, column in AACL_FEATURES.items():
                terms[column] = enabled and _switch(c, aacl.get(name, False), f"{path}.{name}")

    policies = c.obj(spec.get("overage_policy", {}), "contract.overage_policy", set(METRICS), set())
    for metric, policy in policies.items():
        path = f"contract.overage_policy.{metric}"
        if policy in (OverageMode.BLOCK, OverageMode.ALLOW):
            terms[f"{metric}_overage"], terms[f"{metric}_overage_factor"] = policy, None
            continue
        policy = c.obj(policy, path, {"allow_up_to"}, {"allow_up_to"})
        if "allow_up_to" not in policy:
            continue
        try:
            factor = Decimal(str(policy["allow_up_to"]))
            if isinstance(policy["allow_up_to"], bool) or not Decimal(1) <= factor <= Decimal(100):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            c.fail(f"{path}.allow_up_to", "must be a number from 1 to 100")
            continue
        terms[f"{metric}_overage"] = OverageMode.ALLOW_UP_TO
        terms[f"{metric}_overage_factor"] = factor.quantize(Decimal("0.001"))
    return terms


def _switch(c: _Checker, value: Any, path: str) -> bool:
    if isinstance(value, dict):
        value = value.get("enabled")
    if not isinstance(value, bool):
        c.fail(path, 'must be true/false or {"enabled": true/false}')
        return False
    return value


def _parse(spec: Any) -> dict[str, Any]:
    c = _Checker()
    spec = c.obj(spec, "spec", SPEC_KEYS, {"organization", "owner_email"})
    org = c.obj(spec.get("organization"), "organization", {"slug", "name"}, {"slug", "name"})
    parsed: dict[str, Any] = {
        "slug": c.text(org.get("slug"), "organization.slug", SLUG),
        "name": c.text(org.get("name"), "organization.name"),
        "owner_email": c.text(spec.get("owner_email"), "owner_email").strip().lower(),
        "contract": None,
        "projects": [],
    }
    if parsed["owner_email"]:
        try:
            validate_email(parsed["owner_email"])
        except ValidationError:
            c.fail("owner_email", "must be an email address")
    if "contract" in spec:
        parsed["contract"] = _parse_contract(c, spec["contract"])
    projects = spec.get("projects", [])
    if not isinstance(projects, list):
        c.fail("projects", "must be a list")
        projects = []
    seen: set[str] = set()
    for i, project in enumerate(projects):
        path = f"projects[{i}]"
        project = c.obj(project, path, {"slug", "name", "environments"}, {"slug"})
        slug = c.text(project.get("slug"), f"{path}.slug", SLUG)
        if slug in seen:
            c.fail(f"{path}.slug", "appears twice")
        seen.add(slug)
        environments = []
        names: set[str] = set()
        raw_envs = project.get("environments", [])
        if not isinstance(raw_envs, list):
            c.fail(f"{path}.environments", "must be a list")
            raw_envs = []
        for j, env in enumerate(raw_envs):
            epath = f"{path}.environments[{j}]"
            env = c.obj(env, epath, {"name", "kind"}, {"name", "kind"})
            name = c.text(env.get("name"), f"{epath}.name", ENV_NAME)
            kind = env.get("kind")
            if kind not in (EnvironmentKind.PRODUCTION, EnvironmentKind.CICD):
                c.fail(
                    f"{epath}.kind",
                    "must be 'production' or 'cicd' (personal environments belong to developers)",
                )
            if name in names:
                c.fail(f"{epath}.name", "appears twice")
            names.add(name)
            environments.append({"name": name, "kind": kind})
        if sum(e["kind"] == EnvironmentKind.PRODUCTION for e in environments) > 1:
            c.fail(f"{path}.environments", "a project has exactly one production environment")
        parsed["projects"].append(
            {"slug": slug, "name": project.get("name") or slug, "environments": environments}
        )
    if c.errors:
        raise SpecError(c.errors)
    return parsed


def _apply_contract(organization: Organization, terms: dict[str, Any]) -> Contract:
    active = organization.contracts.filter(status=ContractStatus.ACTIVE).first()
    if active is not None and all(getattr(active, k) == v for k, v in terms.items()):
        return active  # same terms: nothing to change, no new history row
    defaults = {
        f.name: f.get_default()
        for f in Contract._meta.concrete_fields
        if f.name not in ("id", "organization", "status", "created_at")
    }
    return contract_activate(organization=organization, **{**defaults, **terms})


def _environment_for(project: Project, name: str, kind: str) -> Environment:
    if kind == EnvironmentKind.PRODUCTION:
        production = project.environments.get(kind=EnvironmentKind.PRODUCTION)
        if production.name != name:
            production.name = name
            production.save(update_fields=["name"])
        return production
    existing = project.environments.filter(name=name, owner__isnull=True).first()
    if existing is not None:
        if existing.kind != kind:
            raise SpecError([f"{project.slug}/{name}: exists with kind {existing.kind}"])
        return existing
    return environment_create(project=project, name=name, kind=kind)


def provision(spec: Any) -> dict[str, Any]:
    """Apply `spec`; return the ids, slugs and the API keys issued by this run."""
    parsed = _parse(spec)
    with transaction.atomic():
        owner, _ = user_get_or_create(email=parsed["owner_email"])
        organization = Organization.objects.filter(slug=parsed["slug"]).first()
        if organization is None:
            organization = organization_create(slug=parsed["slug"], name=parsed["name"])
        elif organization.name != parsed["name"]:
            organization.name = parsed["name"]
            organization.save(update_fields=["name"])
        membership_set(organization=organization, user=owner, role=Role.OWNER)
        if parsed["contract"] is not None:
            _apply_contract(organization, parsed["contract"])

        out_projects = []
        for p in parsed["projects"]:
            project = organization.projects.filter(slug=p["slug"]).first()
            if project is None:
                project = project_create(organization=organization, slug=p["slug"], name=p["name"])
            elif project.name != p["name"]:
                project.name = p["name"]
                project.save(update_fields=["name"])
            wanted = p["environments"] or [{"name": "production", "kind": "production"}]
            out_envs = []
            for e in wanted:
                environment = _environment_for(project, e["name"], e["kind"])
                row: dict[str, Any] = {
                    "id": environment.pk,
                    "name": environment.name,
                    "kind": environment.kind,
                }
                if not environment.api_keys.filter(revoked_at__isnull=True).exists():
                    row["api_key"] = api_key_issue(
                        environment=environment, name="provisioned"
                    ).plaintext
                out_envs.append(row)
            out_projects.append({"slug": project.slug, "environments": out_envs})
    return {
        "organization": {"id": organization.pk, "slug": organization.slug},
        "projects": out_projects,
    }
