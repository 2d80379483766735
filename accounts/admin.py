"""Vendor staff's view of customers: organizations, people, projects, environments, keys.

Contracts and plan templates: accounts.admin_contracts; the audit trail: accounts.admin_audit;
seats, tokens and CLI logins: accounts.admin_team; licenses: accounts.licensing.admin. The
organization and environment pages gain their usage summaries in metering.admin.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from accounts.admin_kit import (
    AuditedAdmin,
    ConsoleAdmin,
    organization_filter,
    reason_action,
    when,
)
from accounts.models import (
    ApiKey,
    Contract,
    Environment,
    EnvironmentKind,
    Invitation,
    Membership,
    Organization,
    Project,
    User,
)
from accounts.requests import signed_in_user
from accounts.services.api_keys import api_key_revoke
from accounts.services.audit import Actor
from accounts.services.organizations import environment_set_status


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "name",
        "is_staff",
        "is_active",
        when("date_joined", "joined"),
        when("last_login", "last login"),
    ]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class ContractInline(admin.TabularInline):
    """The organization's contracts at a glance; terms are edited on the contract's own
    page, where overlaps are checked and templates offered."""

    model = Contract
    extra = 0
    can_delete = False
    fields = ("plan", "status", "starts_on", "ends_on", "api_calls_per_period")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ["slug", "name", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True


def _count_of(model: type[Membership | Project], field: str) -> Coalesce:
    """A per-row count as a correlated subquery: computed for the page's rows only, where
    a JOIN + GROUP BY would aggregate all 10,000 organizations before the LIMIT."""
    counted = (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = ["slug", "name", "member_count", "project_count", when("created_at", "created")]
    # A member's email is searched in get_search_results, without Django's join.
    search_fields = ["slug", "name"]
    search_help_text = "A slug, a name, or a member's email (or part of it, with an @)."
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ContractInline, ProjectInline]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Organization], search_term: str
    ) -> tuple[QuerySet[Organization], bool]:
        """A term with an @ finds organizations by their members' emails, through a
        subquery: Django's search across the membership join needs a DISTINCT over every
        joined row, which also evaluates the page's per-row counts for all of them."""
        term = search_term.strip()
        if "@" in term:
            members = Membership.objects.filter(user__email__icontains=term)
            return queryset.filter(pk__in=members.values("organization_id")), False
        return super().get_search_results(request, queryset, search_term)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=_count_of(Membership, "organization"),
                _projects=_count_of(Project, "organization"),
            )
        )

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        # A customer with contracts is history (usage, flags, true-ups cascade from it).
        if obj is not None and obj.contracts.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(ordering="_members", description="members")
    def member_count(self, obj: Organization) -> int:
        return getattr(obj, "_members", 0)

    @admin.display(ordering="_projects", description="projects")
    def project_count(self, obj: Organization) -> int:
        return getattr(obj, "_projects", 0)


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ["user", "organization", "role", when("created_at", "since")]
    list_filter = ["role", organization_filter("organization")]
    search_fields = ["user__email", "organization__slug", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(AuditedAdmin):
    list_display = [
        "email",
        "organization",
        "role",
        when("created_at", "sent"),
        when("expires_at", "expires"),
        when("accepted_at", "accepted"),
        when("revoked_at", "revoked"),
    ]
    list_filter = ["role", organization_filter("organization")]
    search_fields = ["email", "organization__slug", "organization__name"]
    list_select_related = ["organization"]
    # The token exists only as a digest; there is nothing useful to show or edit.
    exclude = ["token_digest"]
    readonly_fields = ["accepted_at"]


class EnvironmentInline(admin.TabularInline):
    model = Environment
    extra = 0
    fields = ["name", "kind", "status", "owner", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting from the inline would bypass the per-row check; use the environment page.
        return False


@admin.register(Project)
class ProjectAdmin(AuditedAdmin):
    list_display = ["slug", "name", "organization", when("created_at", "created")]
    list_filter = [organization_filter("organization")]
    search_fields = ["slug", "name", "organization__slug", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    inlines = [EnvironmentInline]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("display", "name", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _set_status(enabled: bool):
    def apply(request: HttpRequest, environment: Environment, reason: str) -> bool:
        before = environment.status
        environment_set_status(
            environment=environment,
            enabled=enabled,
            actor=Actor.of(signed_in_user(request)),
            reason=reason,
        )
        return environment.status != before

    return apply


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ["name", "project", "kind", "status", "owner", "created_at"]
    list_filter = ["kind", "status", organization_filter("project__organization")]
    search_fields = [
        "name",
        "project__slug",
        "project__organization__slug",
        "project__organization__name",
        "owner__email",
    ]
    list_select_related = ["project__organization", "owner"]
    autocomplete_fields = ["project", "owner"]
    inlines = [ApiKeyInline]
    actions = [
        reason_action(
            name="disable",
            description="Disable selected environments (stops keys and licenses)",
            permission="change",
            done="Disabled",
            apply=_set_status(False),
        ),
        reason_action(
            name="enable",
            description="Enable selected environments",
            permission="change",
            done="Enabled",
            apply=_set_status(True),
        ),
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Environment | None = None) -> bool:
        if obj is not None and obj.kind == EnvironmentKind.PRODUCTION:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Environment]) -> None:
        kept = queryset.filter(kind=EnvironmentKind.PRODUCTION).count()
        queryset.exclude(kind=EnvironmentKind.PRODUCTION).delete()
        if kept:
            self.message_user(
                request,
                f"{kept} production environment(s) kept: they cannot be deleted.",
                messages.WARNING,
            )


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def _revoke_key(request: HttpRequest, api_key: ApiKey, reason: str) -> bool:
    if api_key.revoked_at is not None:
        return False
    api_key_revoke(api_key=api_key, actor=Actor.of(signed_in_user(request)), reason=reason)
    return True


@admin.register(ApiKey)
class ApiKeyAdmin(ConsoleAdmin):
    """Keys are shown by prefix and last four only; staff can revoke, never read them."""

    list_display = [
        "display",
        "name",
        "environment",
        when("created_at", "created"),
        when("last_used_at", "last used"),
        when("expires_at", "expires"),
        when("revoked_at", "revoked"),
    ]
    list_filter = [
        ApiKeyStateFilter,
        "environment__kind",
        organization_filter("environment__project__organization"),
    ]
    search_fields = [
        "=prefix",
        "name",
        "environment__project__slug",
        "environment__project__organization__slug",
    ]
    list_select_related = ["environment__project__organization"]
    ordering = ["-pk"]  # newest first from the primary key; created_at has no index
    fields = (
        "display",
        "name",
        "environment",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "replaced_by",
    )
    readonly_fields = fields
    actions = [
        reason_action(
            name="revoke",
            description="Revoke selected API keys",
            permission="revoke",
            done="Revoked",
            apply=_revoke_key,
        )
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key made here could never be shown to anyone: issue keys through the product.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # revoke instead: the key's history stays

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_apikey")


# Contracts and templates, the audit trail, team objects and licensing: their own modules.
from accounts import admin_audit, admin_contracts, admin_team  # noqa: E402, F401
from accounts.licensing import admin as _licensing_admin  # noqa: E402, F401
