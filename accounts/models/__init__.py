"""Customers, their people, contracts, projects, environments, keys and licenses.

Invariants live in the database (each model's constraints), so no code path can break
them, whatever it forgets to check. One module per area; everything is importable from
`accounts.models`, which is also what registers the models with the `accounts` app.
"""

from accounts.models.access import (
    CliLoginKind,
    CliLoginSession,
    CliSessionStatus,
    PersonalAccessToken,
)
from accounts.models.audit import ActorKind, AuditEvent, AuditKind
from accounts.models.contracts import (
    API_CALLS,
    DEVELOPER_SEATS,
    METRICS,
    NONPROD_DAILY_API_CALLS,
    SEATS,
    TENANTS,
    Contract,
    ContractStatus,
    OverageMode,
    PlanTemplate,
    TenantLimitType,
)
from accounts.models.licensing import License, LicenseKind, SigningKey, SigningKeyStatus
from accounts.models.people import (
    MANAGER_ROLES,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    UserManager,
)
from accounts.models.projects import (
    API_KEY_KIND,
    ApiKey,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    EnvironmentQuerySet,
    EnvironmentStatus,
    Project,
    ProtectedEnvironmentError,
)

__all__ = [
    "API_CALLS",
    "API_KEY_KIND",
    "DEVELOPER_SEATS",
    "MANAGER_ROLES",
    "METRICS",
    "NONPROD_DAILY_API_CALLS",
    "SEATS",
    "TENANTS",
    "ActorKind",
    "ApiKey",
    "AuditEvent",
    "AuditKind",
    "CliLoginKind",
    "CliLoginSession",
    "CliSessionStatus",
    "Contract",
    "ContractStatus",
    "DeveloperSeat",
    "Environment",
    "EnvironmentKind",
    "EnvironmentQuerySet",
    "EnvironmentStatus",
    "Invitation",
    "License",
    "LicenseKind",
    "Membership",
    "Organization",
    "OverageMode",
    "PersonalAccessToken",
    "PlanTemplate",
    "Project",
    "ProtectedEnvironmentError",
    "Role",
    "SigningKey",
    "SigningKeyStatus",
    "TenantLimitType",
    "User",
    "UserManager",
]
