"""Staff views of compliance: triage flags, watch the outbox, read true-ups and endpoints.
Registered from `MeteringConfig.ready()`."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from metering.compliance import services
from metering.compliance.models import (
    FlagEvent,
    Notification,
    NotificationStatus,
    OverageFlag,
    TrueUp,
    WebhookEndpoint,
)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class FlagEventInline(admin.TabularInline):
    model = FlagEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "value", "notified_at"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", "Open"),
            ("resolved", "Resolved"),
            ("unacknowledged", "Open, not acknowledged"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        if self.value() == "unacknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        return queryset


@admin.register(OverageFlag)
class OverageFlagAdmin(_ReadOnly):
    list_display = [
        "organization",
        "metric",
        "level",
        "environment",
        "value",
        "limit",
        "period_start",
        "raised_at",
        "resolved_at",
        "acknowledged_at",
    ]
    list_filter = [OpenFilter, "level", "metric", "period_start"]
    search_fields = ["organization__slug", "organization__name", "scope"]
    list_select_related = ["organization", "environment__project"]
    date_hierarchy = "raised_at"
    readonly_fields = [
        "contract",
        "organization",
        "environment",
        "metric",
        "scope",
        "level",
        "period_start",
        "period_end",
        "value",
        "limit",
        "raised_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "changed_by_run",
    ]
    fields = [*readonly_fields, "note"]
    inlines = [FlagEventInline]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge selected flags")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[OverageFlag]) -> None:
        for flag in queryset:
            services.flag_acknowledge(flag=flag, by=request.user)
        messages.success(request, f"Acknowledged {queryset.count()} flag(s).")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_staff  # the note is editable


@admin.register(Notification)
class NotificationAdmin(_ReadOnly):
    list_display = [
        "topic",
        "channel",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["recipient", "topic", "organization__slug"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_now"]

    @admin.action(description="Retry now (failed or pending)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        # Sent rows are never re-sent: the filter leaves them out.
        n = queryset.exclude(status=NotificationStatus.SENT).update(
            status=NotificationStatus.PENDING, next_attempt_at=timezone.now(), claimed_until=None
        )
        messages.success(request, f"{n} notification(s) queued again.")


@admin.register(TrueUp)
class TrueUpAdmin(_ReadOnly):
    list_display = [
        "organization",
        "metric",
        "period_start",
        "period_end",
        "usage",
        "limit",
        "peak",
        "overage",
    ]
    list_filter = ["metric", "period_start"]
    search_fields = ["organization__slug"]
    readonly_fields = [f.name for f in TrueUp._meta.fields]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["organization", "url", "is_active", "secret_last_four", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["organization__slug", "url"]
    # The encrypted secret is never shown; staff can disable an endpoint or delete it.
    fields = [
        "organization",
        "url",
        "description",
        "is_active",
        "secret_last_four",
        "created_at",
        "created_by",
    ]
    readonly_fields = ["organization", "url", "secret_last_four", "created_at", "created_by"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
