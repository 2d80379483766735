"""Personal environments: a developer seat holder's own CMS environments on a project."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import (
    ApiKey,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Project,
    User,
)
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.audit import Actor
from accounts.services.team import TeamError

NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class IssuedPersonalEnvironment:
    environment: Environment
    api_key: ApiKey
    plaintext: str  # the environment's new API key, shown once
    created: bool

    def wcp_project_environment(self) -> str:
        return wcp_project_environment(self.environment, self.plaintext)


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


@transaction.atomic
def personal_environment_get_or_create(
    *, project: Project, user: User, name: str
) -> IssuedPersonalEnvironment:
    """The seat holder's personal environment `name` on `project`, created if needed, with
    a fresh API key (asking again rotates the key: the previous one stops at once)."""
    if not NAME_SHAPE.match(name or ""):
        raise TeamError(
            "An environment name is 1 to 40 lowercase letters, digits or dashes, "
            "starting with a letter or digit (for example 'dev').",
            code="invalid_name",
        )
    # Row lock on the seat: serializes this developer's creations on this project, so the
    # per-seat count below cannot be raced past; a concurrently freed seat waits for us.
    seat = (
        DeveloperSeat.objects.select_for_update()
        .filter(membership__user=user, project=project, freed_at=None)
        .first()
    )
    if seat is None:
        raise TeamError(
            "You hold no developer seat on this project: ask an owner or admin of the "
            "organization to assign you one.",
            code="no_developer_seat",
            status=403,
        )
    environment = Environment.objects.filter(
        project=project, owner=user, kind=EnvironmentKind.PERSONAL, name=name
    ).first()
    created = environment is None
    if environment is None:
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
    elif not environment.is_enabled:
        raise TeamError(
            f"Your personal environment {name!r} is disabled; an owner or admin can enable it.",
            code="environment_disabled",
            status=409,
        )
    else:
        # Rotation: every key of this environment stops now; the new one replaces them.
        for old_key in ApiKey.objects.filter(environment=environment, revoked_at=None):
            api_key_revoke(api_key=old_key, actor=Actor.of(user), reason="personal key re-issued")
    issued = api_key_issue(
        environment=environment, name="personal", created_by=user, actor=Actor.of(user)
    )
    environment.project = project
    return IssuedPersonalEnvironment(environment, issued.api_key, issued.plaintext, created)
