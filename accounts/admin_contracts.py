"""Contracts and the plan templates staff start them from.

An organization's active contracts never overlap: the form reports it (Django runs the
model's exclusion constraint in `validate_constraints`), the database refuses it. A contract
with usage, flags or true-ups is history and cannot be deleted; end or supersede it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts import periods
from accounts.admin_kit import ConsoleAdmin, number
from accounts.models import Contract, ContractStatus, PlanTemplate
from accounts.models.contracts import ContractTerms
from accounts.requests import signed_in_user
from accounts.services.audit import Actor
from accounts.services.organizations import contract_save

TERMS_FIELDSETS = [
    (
        "Limits",
        {
            "fields": [
                "api_calls_per_period",
                "seats_per_environment",
                ("tenants_per_environment", "tenants_type"),
                "developer_seats",
                "nonprod_daily_api_calls",
            ]
        },
    ),
    (
        "Features",
        {
            "fields": [
                "advanced_publishing_workflow",
                ("aacl_teams", "aacl_private_files", "aacl_folder_level_permissions"),
                ("audit_logs", "record_locking"),
            ]
        },
    ),
    (
        "Overage policy",
        {
            "fields": [
                ("api_calls_overage", "api_calls_overage_factor"),
                ("seats_overage", "seats_overage_factor"),
                ("tenants_overage", "tenants_overage_factor"),
                ("developer_seats_overage", "developer_seats_overage_factor"),
                ("nonprod_daily_api_calls_overage", "nonprod_daily_api_calls_overage_factor"),
            ]
        },
    ),
]


class EndingSoonFilter(admin.SimpleListFilter):
    title = "ending"
    parameter_name = "ending"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("30", "Active, ending within 30 days"), ("in_force", "In force today")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contract]) -> QuerySet[Contract]:
        today = timezone.now().date()
        in_force = queryset.filter(
            status=ContractStatus.ACTIVE, starts_on__lte=today, ends_on__gt=today
        )
        if self.value() == "30":
            return in_force.filter(ends_on__lte=today + dt.timedelta(days=30))
        if self.value() == "in_force":
            return in_force
        return queryset


def contract_has_history(contract: Contract) -> bool:
    """Usage in its span, or flags or true-ups on it: the contract is evidence now."""
    if contract.pk is None:
        return False
    start = dt.datetime.combine(contract.starts_on, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(contract.ends_on, dt.time(), tzinfo=dt.UTC)
    # Reverse relations by name: accounts does not import metering (the layer above).
    return (
        contract.flags.exists()
        or contract.true_ups.exists()
        or contract.organization.projects.filter(
            environments__usage_rollups__hour__gte=start,
            environments__usage_rollups__hour__lt=end,
        ).exists()
    )


@admin.register(Contract)
class ContractAdmin(ConsoleAdmin):
    list_display = [
        "organization",
        "plan",
        "status",
        "starts_on",
        "ends_on",
        number("api_calls_per_period", "API calls"),
        number("seats_per_environment", "seats"),
        number("developer_seats", "dev. seats"),
    ]
    list_filter = ["status", EndingSoonFilter, "plan"]
    search_fields = ["organization__slug", "organization__name", "plan"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    date_hierarchy = "ends_on"
    readonly_fields = ["created_at"]

    def get_fieldsets(self, request: HttpRequest, obj: Contract | None = None) -> list[Any]:
        head: dict[str, Any] = {
            "fields": ["organization", "plan", "status", ("starts_on", "ends_on"), "created_at"]
        }
        if obj is None:
            head["description"] = self._template_links(request)
        return [(None, head), *TERMS_FIELDSETS]

    def _template_links(self, request: HttpRequest) -> str:
        templates = list(PlanTemplate.objects.order_by("name"))
        if not templates:
            return ""
        url = reverse("admin:accounts_contract_add")
        organization = request.GET.get("organization", "")
        links = format_html_join(
            ", ",
            '<a href="{}?template={}&amp;organization={}">{}</a>',
            ((url, t.pk, organization, t.name) for t in templates),
        )
        return format_html("Start from a plan template: {}", links)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = super().get_changeform_initial_data(request)
        raw = request.GET.get("template", "")
        template = PlanTemplate.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if template is not None:
            today = timezone.now().date()
            initial.update({name: getattr(template, name) for name in ContractTerms.term_names()})
            initial["plan"] = template.name
            initial["starts_on"] = today
            initial["ends_on"] = periods.add_months(today, template.months)
        return initial

    def save_model(self, request: HttpRequest, obj: Contract, form: Any, change: bool) -> None:
        contract_save(
            contract=obj, actor=Actor.of(signed_in_user(request)), changed=list(form.changed_data)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Contract | None = None) -> bool:
        if obj is not None and contract_has_history(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Bulk delete would skip the per-contract history check.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(PlanTemplate)
class PlanTemplateAdmin(ConsoleAdmin):
    list_display = ["name", "description", "months", "api_calls_per_period", "start_contract"]
    search_fields = ["name"]

    def get_fieldsets(self, request: HttpRequest, obj: PlanTemplate | None = None) -> list[Any]:
        return [(None, {"fields": ["name", "description", "months"]}), *TERMS_FIELDSETS]

    @admin.display(description="")
    def start_contract(self, obj: PlanTemplate) -> str:
        return format_html(
            '<a href="{}?template={}">Start a contract</a>',
            reverse("admin:accounts_contract_add"),
            obj.pk,
        )
