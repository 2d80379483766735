"""Staff views of compliance: triage flags, watch the outbox, read true-ups and endpoints.
Registered from `MeteringConfig.ready()`."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from accounts import periods
from accounts.admin_kit import (
    AtScaleAdmin,
    ConsoleAdmin,
    choices_filter,
    number,
    organization_filter,
    reason_action,
    when,
)
from accounts.models import METRICS, AuditEvent
from accounts.requests import signed_in_user
from accounts.services.audit import Actor
from metering.compliance import services
from metering.compliance.models import (
    FLAG_METRICS,
    FlagEvent,
    Notification,
    OverageFlag,
    TrueUp,
    WebhookEndpoint,
)


class _ReadOnly(AtScaleAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class FlagEventInline(admin.TabularInline):
    model = FlagEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "at", "value", "notified_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class FlagStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("open", "Open (not waived)"),
            ("unacknowledged", "Open, not acknowledged"),
            ("acknowledged", "Open, acknowledged"),
            ("waived", "Waived"),
            ("resolved", "Resolved"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        open_ = queryset.filter(resolved_at__isnull=True, waived_at__isnull=True)
        return {
            "open": open_,
            "unacknowledged": open_.filter(acknowledged_at__isnull=True),
            "acknowledged": open_.filter(acknowledged_at__isnull=False),
            "waived": queryset.filter(waived_at__isnull=False),
            "resolved": queryset.filter(resolved_at__isnull=False),
        }.get(self.value() or "", queryset)


class PeriodFilter(admin.SimpleListFilter):
    """The billing periods that began in the last months (by month of `period_start`),
    listed from the calendar: a DISTINCT over every flag would scan the table."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        today = timezone.now().date().replace(day=1)
        months = [periods.add_months(today, -i) for i in range(6)]
        return [(m.strftime("%Y-%m"), f"began in {m:%b %Y}") for m in months]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or ""
        try:
            first = dt.datetime.strptime(value, "%Y-%m").replace(tzinfo=dt.UTC)
        except ValueError:
            return queryset
        after = periods.add_months(first.date(), 1)
        return queryset.filter(
            period_start__gte=first,
            period_start__lt=dt.datetime.combine(after, dt.time(), tzinfo=dt.UTC),
        )


def _acknowledge(request: HttpRequest, flag: OverageFlag, reason: str) -> bool:
    return services.flag_acknowledge(flag=flag, by=signed_in_user(request), reason=reason)


def _resolve(request: HttpRequest, flag: OverageFlag, reason: str) -> bool:
    return services.flag_resolve(flag=flag, by=signed_in_user(request), reason=reason)


def _waive(request: HttpRequest, flag: OverageFlag, reason: str) -> bool:
    return services.flag_waive(flag=flag, by=signed_in_user(request), reason=reason)


@admin.register(OverageFlag)
class OverageFlagAdmin(_ReadOnly):
    list_display = [
        "organization",
        "metric",
        "level",
        "where",
        "usage",
        when("period_start", "period", date_only=True),
        when("raised_at", "raised"),
        "triage",
    ]
    list_filter = [
        FlagStatusFilter,
        "level",
        choices_filter("metric", FLAG_METRICS),
        PeriodFilter,
        organization_filter("organization"),
    ]
    search_fields = ["=organization__slug", "organization__name"]
    list_select_related = ["organization", "environment"]
    date_hierarchy = "raised_at"
    ordering = ["-pk"]  # newest first from the primary key: no index on raised_at
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
        "resolved_by",
        "acknowledged_at",
        "acknowledged_by",
        "waived_at",
        "waived_by",
        "changed_by_run",
        "history",
    ]
    fields = [*readonly_fields, "note"]
    inlines = [FlagEventInline]
    actions = [
        reason_action(
            name="acknowledge",
            description="Acknowledge selected flags",
            permission="acknowledge",
            done="Acknowledged",
            apply=_acknowledge,
        ),
        reason_action(
            name="resolve",
            description="Resolve selected flags",
            permission="resolve",
            done="Resolved",
            apply=_resolve,
        ),
        reason_action(
            name="waive",
            description="Waive selected flags (accept the overage)",
            permission="waive",
            done="Waived",
            apply=_waive,
        ),
    ]

    @admin.display(description="where")
    def where(self, obj: OverageFlag) -> str:
        return obj.environment.name if obj.environment else "organization"

    @admin.display(description="value / limit")
    def usage(self, obj: OverageFlag) -> str:
        return f"{obj.value:,} / {obj.limit:,}" if obj.limit is not None else f"{obj.value:,}"

    @admin.display(description="triage")
    def triage(self, obj: OverageFlag) -> str:
        if obj.waived_at:
            return f"waived {obj.waived_at:%m-%d}"
        if obj.resolved_at:
            return f"resolved {obj.resolved_at:%m-%d}"
        return f"ack. {obj.acknowledged_at:%m-%d}" if obj.acknowledged_at else "open"

    @admin.display(description="staff actions")
    def history(self, obj: OverageFlag) -> str:
        events = AuditEvent.objects.filter(
            target_type=OverageFlag._meta.label_lower, target_id=str(obj.pk)
        ).order_by("at")
        return (
            format_html_join(
                mark_safe("<br>"),
                "{} {} by {}: {}",
                (
                    (f"{e.at:%Y-%m-%d %H:%M}", e.get_kind_display(), e.actor_label, e.reason)
                    for e in events
                ),
            )
            or "-"
        )

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.acknowledge_overageflag")

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.resolve_overageflag")

    def has_waive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.waive_overageflag")


def _resend(request: HttpRequest, notification: Notification, reason: str) -> bool:
    return services.notification_resend(
        notification=notification, by=signed_in_user(request), reason=reason
    )


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
    list_filter = ["status", "channel", organization_filter("organization")]
    search_fields = ["=recipient", "=topic", "=organization__slug"]
    readonly_fields = [f.name for f in Notification._meta.fields if f.name != "claim_token"]
    exclude = ["claim_token"]
    date_hierarchy = "created_at"
    ordering = ["-pk"]
    actions = [
        reason_action(
            name="resend",
            description="Send again (failed or pending; never a sent one)",
            permission="resend",
            done="Queued",
            apply=_resend,
        )
    ]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.resend_notification")


@admin.register(TrueUp)
class TrueUpAdmin(_ReadOnly):
    list_select_related = ["organization"]
    list_display = [
        "organization",
        "metric",
        when("period_start", "from", date_only=True),
        when("period_end", "to", date_only=True),
        number("usage"),
        number("limit"),
        number("peak"),
        number("overage"),
    ]
    list_filter = [choices_filter("metric", METRICS), organization_filter("organization")]
    search_fields = ["=organization__slug"]
    date_hierarchy = "period_start"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    readonly_fields = [f.name for f in TrueUp._meta.fields]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ConsoleAdmin):
    list_select_related = ["organization"]
    list_display = ["organization", "url", "is_active", "secret_last_four", when("created_at")]
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

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(endpoint=obj, actor=Actor.of(signed_in_user(request)))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.webhook_endpoint_delete(
                endpoint=endpoint, actor=Actor.of(signed_in_user(request))
            )
