"""The license document the CMS reads, built from a contract.

The CMS base64-decodes the `license` string of the answer and reads `orgId`, `projectId`
and `package.features` (its `License` class checks `features.<name>.enabled === true` and
the AACL options). Feature names are the contract's switch names on the wire.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from accounts.models import Contract


def package_features(contract: Contract) -> dict[str, Any]:
    aacl = {
        "teams": contract.aacl_teams,
        "privateFiles": contract.aacl_private_files,
        "folderLevelPermissions": contract.aacl_folder_level_permissions,
    }
    return {
        # Seats and multi-tenancy are always enabled for a project; the contract sets the
        # counts. None (unlimited in the contract) is sent as null.
        "seats": {"enabled": True, "options": {"maxCount": contract.seats_per_environment}},
        "multiTenancy": {
            "enabled": True,
            "options": {
                "maxCount": {
                    "type": contract.tenants_type,
                    "count": contract.tenants_per_environment,
                }
            },
        },
        "advancedPublishingWorkflow": {"enabled": contract.advanced_publishing_workflow},
        # AACL is on when any of its parts is (the contract has no separate master switch).
        "advancedAccessControlLayer": {"enabled": any(aacl.values()), "options": aacl},
        "auditLogs": {"enabled": contract.audit_logs},
        "recordLocking": {"enabled": contract.record_locking},
    }


def license_document(*, org_id: str, project_id: str, contract: Contract) -> dict[str, Any]:
    return {
        "orgId": org_id,
        "projectId": project_id,
        "package": {"features": package_features(contract)},
    }


def limits(contract: Contract) -> dict[str, Any]:
    return {
        "seats": contract.seats_per_environment,
        "tenants": {"type": contract.tenants_type, "count": contract.tenants_per_environment},
    }


def encode_document(document: dict[str, Any]) -> str:
    """What the CMS expects in `license`: standard base64 of the UTF-8 JSON text."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
