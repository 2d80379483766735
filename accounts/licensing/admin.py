"""Staff's view of signing keys and issued licenses; staff revoke licenses here."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.admin_kit import AtScaleAdmin, organization_filter, reason_action, when
from accounts.licensing import services
from accounts.models import License, SigningKey
from accounts.requests import signed_in_user
from accounts.services.audit import Actor


class LicenseStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("revoked", "Revoked"), ("not_revoked", "Not revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[License]) -> QuerySet[License]:
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "not_revoked":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


def _revoke(request: HttpRequest, record: License, reason: str) -> bool:
    if record.revoked_at is not None:
        return False
    user = signed_in_user(request)
    services.license_revoke(license=record, by=user, actor=Actor.of(user), reason=reason)
    return True


@admin.register(License)
class LicenseAdmin(AtScaleAdmin):
    """Issued licenses are facts: read-only, except that staff can revoke them."""

    list_display = [
        "jti",
        "kind",
        "subject",
        "status",
        "kid",
        when("issued_at", "issued"),
        when("expires_at", "expires"),
    ]
    list_filter = [LicenseStateFilter, "kind", organization_filter("organization")]
    search_fields = ["=jti", "subject", "organization__slug", "project__slug"]
    list_select_related = ["organization", "signing_key"]
    # Newest first from the primary key (issue order): `-issued_at` would sort the table.
    ordering = ["-pk"]
    date_hierarchy = "issued_at"
    readonly_fields = (
        "jti",
        "kind",
        "subject",
        "organization",
        "project",
        "environment",
        "developer",
        "signing_key",
        "claims",
        "issued_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    fields = readonly_fields
    actions = [
        reason_action(
            name="revoke",
            description="Revoke selected licenses",
            permission="revoke",
            done="Revoked",
            apply=_revoke,
        )
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: License | None = None) -> bool:
        return False

    @admin.display(description="kid", ordering="signing_key__kid")
    def kid(self, obj: License) -> str:
        return obj.signing_key.kid[:12] + "…"

    @admin.display(description="status")
    def status(self, obj: License) -> str:
        if obj.revoked_at is not None:
            return f"revoked {obj.revoked_at:%Y-%m-%d}"
        return "expired" if obj.expires_at <= timezone.now() else "valid"

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_license")


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Public keys only. Keys are managed with `manage.py license_keys`."""

    list_display = [
        "kid",
        "state",
        when("created_at"),
        when("retired_at"),
        when("withdrawn_at"),
        "licenses_valid",
    ]
    list_filter = ["status"]
    readonly_fields = ("kid", "public_jwk", "status", "created_at", "retired_at", "withdrawn_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="state")
    def state(self, obj: SigningKey) -> str:
        if obj.withdrawn_at is not None:
            return "withdrawn (unpublished)"
        return obj.get_status_display()

    @admin.display(description="unexpired licenses")
    def licenses_valid(self, obj: SigningKey) -> int:
        # Served by license_key_expiry_idx (signing_key, expires_at); a handful of keys.
        return obj.licenses.filter(expires_at__gt=timezone.now()).count()
