"""Staff's view of signing keys and issued licenses; staff revoke licenses here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.licensing import services
from accounts.models import License, SigningKey


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


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    """Issued licenses are facts: read-only, except that staff can revoke them."""

    list_display = [
        "jti",
        "kind",
        "subject",
        "organization",
        "kid",
        "issued_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [LicenseStateFilter, "kind"]
    search_fields = ["jti", "subject", "organization__slug", "project__slug"]
    list_select_related = ["organization", "signing_key"]
    date_hierarchy = "issued_at"
    readonly_fields = [
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
    ]
    fields = readonly_fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: License | None = None) -> bool:
        return False

    @admin.display(description="kid", ordering="signing_key__kid")
    def kid(self, obj: License) -> str:
        return obj.signing_key.kid

    @admin.action(description="Revoke selected licenses")
    def revoke(self, request: HttpRequest, queryset: QuerySet[License]) -> None:
        count = 0
        for record in queryset.filter(revoked_at__isnull=True):
            services.license_revoke(license=record, by=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} license(s).", messages.SUCCESS)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Public keys only. Keys are managed with `manage.py license_keys`."""

    list_display = ["kid", "status", "created_at", "retired_at", "withdrawn_at"]
    list_filter = ["status"]
    readonly_fields = ["kid", "public_jwk", "status", "created_at", "retired_at", "withdrawn_at"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False
