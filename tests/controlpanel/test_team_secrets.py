"""No secret we hand out is stored in plaintext anywhere in the database."""

import pytest
from django.apps import apps
from django.db import connection, models

from accounts.models import Membership, Role
from accounts.services import access, personal, seats, team

pytestmark = pytest.mark.django_db


def every_text_value():
    """Every text value of every table of our apps, read with plain SQL."""
    values = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label not in ("accounts", "controlpanel", "metering"):
                continue
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if isinstance(f, models.CharField | models.TextField)
            ]
            if not columns:
                continue
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(
                f"SELECT {quoted} FROM {connection.ops.quote_name(model._meta.db_table)}"
            )
            values += [str(v) for row in cursor.fetchall() for v in row if v is not None]
    return values


def test_invitation_token_pat_cli_secrets_and_environment_keys_are_digests_only(tenant):
    owner = Membership.objects.get(user=tenant.owner)
    invitation = team.invitation_create(
        organization=tenant.organization, email="new@example.com", role=Role.MEMBER, by=owner
    )
    seats.seat_assign(
        project=tenant.project, membership=Membership.objects.get(user=tenant.member), by=owner
    )
    environment = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    pat = access.pat_issue(user=tenant.member)
    started = access.cli_session_start(client_name="laptop")
    access.cli_session_decide(session=started.session, user=tenant.member, approve=True)
    delivered = access.cli_session_poll(poll_id=started.poll_id).issued

    secrets = {
        "invitation": invitation.token,
        "personal environment key": environment.plaintext,
        "access token": pat.plaintext,
        "cli poll id": started.poll_id,
        "cli approval code": started.code,
        "cli token": delivered.plaintext,
    }
    stored = every_text_value()
    assert len(stored) > 20
    leaked = {name for name, secret in secrets.items() if any(secret in v for v in stored)}
    assert leaked == set()
    # The random part of each is 43 url-safe characters: 256 bits, at least 128 required.
    assert {name: len(s.split("_", 2)[2]) for name, s in secrets.items()} == dict.fromkeys(
        secrets, 43
    )
