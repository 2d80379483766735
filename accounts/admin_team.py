"""Staff views of developer seats, personal access tokens and CLI logins.

Secrets are shown by prefix only; their digests are never displayed. Staff can free
seats and revoke tokens, never read or mint them.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_kit import ConsoleAdmin, organization_filter, reason_action
from accounts.models import CliLoginSession, DeveloperSeat, PersonalAccessToken
from accounts.requests import signed_in_user
from accounts.services import access
from accounts.services.audit import Actor
from accounts.services.seats import seat_release


class _ReadOnlyAdmin(ConsoleAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The change page still shows (read-only) with view permission.
        return False


@admin.register(DeveloperSeat)
class DeveloperSeatAdmin(_ReadOnlyAdmin):
    list_display = ["user", "membership", "project", "assigned_at", "assigned_by", "freed_at"]
    list_filter = [
        ("freed_at", admin.EmptyFieldListFilter),
        organization_filter("project__organization"),
    ]
    search_fields = [
        "user__email",
        "project__slug",
        "project__organization__slug",
        "project__organization__name",
    ]
    list_select_related = [
        "user",
        "membership__user",
        "membership__organization",
        "project__organization",
    ]
    actions = [
        reason_action(
            name="free",
            description="Free selected developer seats",
            permission="change",
            done="Freed",
            apply=lambda request, seat, reason: seat_release(
                seat=seat, actor=Actor.of(signed_in_user(request)), reason=reason
            ),
        )
    ]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Actions need change permission; the form itself has nothing editable.
        return super(_ReadOnlyAdmin, self).has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return ["user", "membership", "project", "assigned_at", "assigned_by", "freed_at"]


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(ConsoleAdmin):
    list_display = [
        "display",
        "user",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__email"]
    list_select_related = ["user"]
    fields = (
        "display",
        "user",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A token made here could never be shown to anyone.
        return False

    @admin.action(description="Revoke selected access tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalAccessToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            access.pat_revoke(token=token)
            count += 1
        self.message_user(request, f"Revoked {count} access token(s).", messages.SUCCESS)


@admin.register(CliLoginSession)
class CliLoginSessionAdmin(_ReadOnlyAdmin):
    list_display = [
        "code_prefix",
        "kind",
        "client_name",
        "status",
        "user",
        "created_at",
        "expires_at",
        "delivered_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["code_prefix", "poll_prefix", "client_name", "user__email"]
    list_select_related = ["user"]
    fields = (
        "kind",
        "poll_prefix",
        "code_prefix",
        "client_name",
        "status",
        "user",
        "created_at",
        "expires_at",
        "decided_at",
        "token",
        "delivered_at",
    )
    readonly_fields = fields
