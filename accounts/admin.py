"""Vendor staff's view of customers: organizations, people, contracts, projects, keys."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

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
from accounts.services.api_keys import api_key_revoke
from accounts.services.organizations import environment_set_status


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
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


class ContractInline(admin.TabularInline):
    model = Contract
    extra = 0
    fields = [
        "plan",
        "status",
        "starts_on",
        "ends_on",
        "api_calls_per_period",
        "seats_per_environment",
        "tenants_per_environment",
        "developer_seats",
    ]
    show_change_link = True


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ["slug", "name", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "member_count", "project_count", "created_at"]
    search_fields = ["slug", "name", "memberships__user__email"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ContractInline, ProjectInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=Count("memberships", distinct=True),
                _projects=Count("projects", distinct=True),
            )
        )

    @admin.display(ordering="_members", description="members")
    def member_count(self, obj: Organization) -> int:
        return obj._members

    @admin.display(ordering="_projects", description="projects")
    def project_count(self, obj: Organization) -> int:
        return obj._projects


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__slug", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "organization",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role"]
    search_fields = ["email", "organization__slug", "organization__name"]
    list_select_related = ["organization"]
    # The token exists only as a digest; there is nothing useful to show or edit.
    exclude = ["token_digest"]
    readonly_fields = ["accepted_at"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = [
        "organization",
        "plan",
        "status",
        "starts_on",
        "ends_on",
        "api_calls_per_period",
        "seats_per_environment",
        "tenants_per_environment",
        "developer_seats",
    ]
    list_filter = ["status", "plan"]
    search_fields = ["organization__slug", "organization__name", "plan"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    date_hierarchy = "starts_on"
    fieldsets = [
        (None, {"fields": ["organization", "plan", "status", "starts_on", "ends_on"]}),
        (
            "Limits",
            {
                "fields": [
                    "api_calls_per_period",
                    "seats_per_environment",
                    "tenants_per_environment",
                    "tenants_type",
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
                    "aacl_teams",
                    "aacl_private_files",
                    "aacl_folder_level_permissions",
                    "audit_logs",
                    "record_locking",
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
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "organization", "created_at"]
    search_fields = ["slug", "name", "organization__slug", "organization__name"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    inlines = [EnvironmentInline]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["display", "name", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "status", "owner", "created_at"]
    list_filter = ["kind", "status"]
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
    actions = ["disable", "enable"]

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

    @admin.action(description="Disable selected environments (stops keys and licenses)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Environment]) -> None:
        for environment in queryset:
            environment_set_status(environment=environment, enabled=False)

    @admin.action(description="Enable selected environments")
    def enable(self, request: HttpRequest, queryset: QuerySet[Environment]) -> None:
        for environment in queryset:
            environment_set_status(environment=environment, enabled=True)


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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are shown by prefix and last four only; staff can revoke, never read them."""

    list_display = [
        "display",
        "name",
        "environment",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [ApiKeyStateFilter, "environment__kind"]
    search_fields = [
        "prefix",
        "name",
        "environment__project__slug",
        "environment__project__organization__slug",
    ]
    list_select_related = ["environment__project__organization"]
    fields = [
        "display",
        "name",
        "environment",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "replaced_by",
    ]
    readonly_fields = [
        "display",
        "environment",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "replaced_by",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key made here could never be shown to anyone: issue keys through the product.
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


# Seats, access tokens and CLI logins (team): registered from their own module.
from accounts import admin_team  # noqa: E402, F401

# Licensing's admin pages live with the licensing package.
from accounts.licensing import admin as _licensing_admin  # noqa: E402, F401
