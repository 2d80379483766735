"""Personal environments: a developer seat holder's own CMS environments on a project."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts import sealing
from accounts.models import (
    ApiKey,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Project,
    User,
)
from accounts.selectors.team import personal_key_current
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.audit import Actor
from accounts.services.team import TeamError

NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
NAME_RULE = (
    "An environment name is 1 to 40 lowercase letters, digits or dashes, "
    "starting with a letter or digit (for example 'dev')."
)
NO_SEAT = (
    "You hold no developer seat on this project: ask an owner or admin of the "
    "organization to assign you one."
)


@dataclass(frozen=True)
class IssuedPersonalEnvironment:
    environment: Environment
    api_key: ApiKey
    plaintext: str  # the environment's new API key, shown once
    created: bool

    def wcp_project_environment(self) -> str:
        return wcp_project_environment(self.environment, self.plaintext)


@dataclass(frozen=True)
class PersonalKey:
    environment: Environment
    plaintext: str  # the environment's current key, shown to its own developer only


def wcp_project_environment(environment: Environment, api_key: str) -> str:
    """The CMS's `WCP_PROJECT_ENVIRONMENT`: base64 of {id, apiKey, org: {id}, project: {id}},
    the ids being what the wire protocol uses (environment id, organization and project
    slugs)."""
    project = environment.project
    document = {
        "id": str(environment.pk),
        "apiKey": api_key,
        "org": {"id": project.organization.slug},
        "project": {"id": project.slug},
    }
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def _held_seat_locked(*, project: Project, user: User) -> DeveloperSeat:
    # Row lock on the seat: serializes this developer's creations on this project, so the
    # per-seat count below cannot be raced past; a concurrently freed seat waits for us.
    seat = (
        DeveloperSeat.objects.select_for_update()
        .filter(membership__user=user, project=project, freed_at=None)
        .first()
    )
    if seat is None:
        raise TeamError(NO_SEAT, code="no_developer_seat", status=403)
    return seat


def _get_or_create_locked(*, project: Project, user: User, name: str) -> tuple[Environment, bool]:
    """The seat holder's enabled personal environment `name`, created if needed. Runs in
    the caller's transaction, under the seat's row lock."""
    if not NAME_SHAPE.fullmatch(name or ""):  # fullmatch: `$` also matches before a "\n"
        raise TeamError(
            NAME_RULE,
            code="invalid_name",
        )
    _held_seat_locked(project=project, user=user)
    environment = Environment.objects.filter(
        project=project, owner=user, kind=EnvironmentKind.PERSONAL, name=name
    ).first()
    if environment is not None:
        if not environment.is_enabled:
            raise TeamError(
                f"Your personal environment {name!r} is disabled; an owner or admin can enable it.",
                code="environment_disabled",
                status=409,
            )
        return environment, False
    limit = settings.PERSONAL_ENVIRONMENTS_PER_SEAT
    existing = list(
        Environment.objects.filter(
            project=project, owner=user, kind=EnvironmentKind.PERSONAL
        ).values_list("name", flat=True)
    )
    if len(existing) >= limit:
        raise TeamError(
            f"A developer seat allows at most {limit} personal environments per project; "
            f"you have {', '.join(sorted(existing))}. Ask again with one of those names.",
            code="personal_environment_limit",
            status=409,
        )
    try:
        # The unique (project, owner, name) index backs this insert.
        with transaction.atomic():
            environment = Environment.objects.create(
                project=project, owner=user, kind=EnvironmentKind.PERSONAL, name=name
            )
    except IntegrityError:
        raise TeamError(
            f"An environment named {name!r} was just created; ask again.",
            code="conflict",
            status=409,
        ) from None
    return environment, True


def _issue_sealed(*, environment: Environment, user: User) -> tuple[ApiKey, str]:
    issued = api_key_issue(
        environment=environment, name="personal", created_by=user, actor=Actor.of(user)
    )
    # Kept encrypted so its developer's CLI can fetch it again (accounts.sealing).
    issued.api_key.sealed = sealing.seal(issued.plaintext)
    issued.api_key.save(update_fields=["sealed"])
    return issued.api_key, issued.plaintext


@transaction.atomic
def personal_environment_get_or_create(
    *, project: Project, user: User, name: str
) -> IssuedPersonalEnvironment:
    """The seat holder's personal environment `name` on `project`, created if needed, with
    a fresh API key (asking again rotates the key: the previous one stops at once)."""
    environment, created = _get_or_create_locked(project=project, user=user, name=name)
    if not created:
        # Rotation: every key of this environment stops now; the new one replaces them.
        for old_key in ApiKey.objects.filter(environment=environment, revoked_at=None):
            api_key_revoke(api_key=old_key, actor=Actor.of(user), reason="personal key re-issued")
    api_key, plaintext = _issue_sealed(environment=environment, user=user)
    environment.project = project
    return IssuedPersonalEnvironment(environment, api_key, plaintext, created)


@transaction.atomic
def personal_environment_ensure(*, project: Project, user: User, name: str) -> PersonalKey:
    """What the CMS's deploy asks for (GraphQL `CreateEnvironment`): the personal
    environment `name`, created if needed, and its current key, the same on every call.
    A key is issued only when none can be shown again (a new environment, or one whose
    keys were revoked or predate sealing)."""
    environment, _ = _get_or_create_locked(project=project, user=user, name=name)
    plaintext = personal_key_current(environment=environment)
    if plaintext is None:
        _, plaintext = _issue_sealed(environment=environment, user=user)
    environment.project = project
    return PersonalKey(environment, plaintext)


def sealed_keys_reseal(*, batch: int = 500) -> int:
    """Re-encrypt every sealed key with the current FIELD_ENCRYPTION_KEY (rotation)."""
    count = 0
    pending = ApiKey.objects.exclude(sealed="").order_by("pk")
    last = 0
    while True:
        rows = list(pending.filter(pk__gt=last).values_list("pk", "sealed")[:batch])
        if not rows:
            return count
        for pk, sealed in rows:
            # Conditional update: a key re-sealed or revoked meanwhile is left as it is.
            count += ApiKey.objects.filter(pk=pk, sealed=sealed).update(
                sealed=sealing.reseal(sealed)
            )
        last = rows[-1][0]
