"""The audit trail, read-only for everyone (the database refuses changes anyway)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from accounts.admin_kit import InputFilter, ReadOnlyAdmin, organization_filter, raw, when
from accounts.models import AuditEvent


class ActorFilter(InputFilter):
    """`?actor=<email or label>`: a person by email (indexed through the user), else the
    label of a key or job."""

    title = "actor"
    parameter_name = "actor"
    placeholder = "email, key or job"

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(actor_label=value.lower() if "@" in value else value)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        when("at"),
        raw("kind"),
        raw("actor_kind", "actor kind"),
        "actor_label",
        "organization_label",
        "target",
        "why",
    ]
    list_filter = ["kind", "actor_kind", organization_filter("organization"), ActorFilter]
    search_fields = ["=target_id", "target_label", "=organization_label", "=actor_label"]
    date_hierarchy = "at"
    readonly_fields = (
        "at",
        "kind",
        "actor_kind",
        "actor_label",
        "actor_user",
        "actor_api_key",
        "organization",
        "organization_label",
        "target_type",
        "target_id",
        "target_label",
        "reason",
        "details",
    )
    fields = readonly_fields

    @admin.display(description="object")
    def target(self, obj: AuditEvent) -> str:
        return Truncator(obj.target_label).chars(40)

    @admin.display(description="reason")
    def why(self, obj: AuditEvent) -> str:
        return Truncator(obj.reason).chars(40)
