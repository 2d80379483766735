"""OpenAPI for the licensing endpoints that are plain Django views (the license fetch and
the JWKS skip DRF on purpose), added by a drf-spectacular post-processing hook
(SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]). The DRF views document themselves."""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"

FEATURE: dict[str, Any] = {
    "type": "object",
    "required": ["enabled"],
    "properties": {"enabled": {"type": "boolean"}},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "WcpLicenseAnswer": {
        "type": "object",
        "required": ["license", "token"],
        "properties": {
            "license": {
                "type": "string",
                "format": "byte",
                "description": "Base64 of the UTF-8 JSON WcpLicenseDocument (what the CMS reads).",
            },
            "token": {
                "type": "string",
                "description": "Compact JWS (EdDSA, kid) of the license claims; verify with "
                "/.well-known/jwks.json. See docs/licenses.md.",
            },
        },
    },
    "WcpLicenseDocument": {
        "type": "object",
        "required": ["orgId", "projectId", "package"],
        "properties": {
            "orgId": {"type": "string"},
            "projectId": {"type": "string"},
            "package": {
                "type": "object",
                "properties": {
                    "features": {
                        "type": "object",
                        "properties": {
                            "seats": {
                                **FEATURE,
                                "properties": {
                                    **FEATURE["properties"],
                                    "options": {
                                        "type": "object",
                                        "properties": {
                                            "maxCount": {"type": "integer", "nullable": True}
                                        },
                                    },
                                },
                            },
                            "multiTenancy": {
                                **FEATURE,
                                "properties": {
                                    **FEATURE["properties"],
                                    "options": {
                                        "type": "object",
                                        "properties": {
                                            "maxCount": {
                                                "type": "object",
                                                "properties": {
                                                    "type": {
                                                        "type": "string",
                                                        "enum": ["fixed", "seatBased"],
                                                    },
                                                    "count": {
                                                        "type": "integer",
                                                        "nullable": True,
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                            "advancedPublishingWorkflow": FEATURE,
                            "advancedAccessControlLayer": {
                                **FEATURE,
                                "properties": {
                                    **FEATURE["properties"],
                                    "options": {
                                        "type": "object",
                                        "properties": {
                                            "teams": {"type": "boolean"},
                                            "privateFiles": {"type": "boolean"},
                                            "folderLevelPermissions": {"type": "boolean"},
                                        },
                                    },
                                },
                            },
                            "auditLogs": FEATURE,
                            "recordLocking": FEATURE,
                        },
                    }
                },
            },
        },
    },
    "WcpLicenseError": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "description": "Shown by the CMS."}},
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "crv", "x", "kid", "alg", "use"],
                    "properties": {
                        "kty": {"type": "string", "enum": ["OKP"]},
                        "crv": {"type": "string", "enum": ["Ed25519"]},
                        "x": {"type": "string"},
                        "kid": {"type": "string", "description": "RFC 7638 thumbprint."},
                        "alg": {"type": "string", "enum": ["EdDSA"]},
                        "use": {"type": "string", "enum": ["sig"]},
                    },
                },
            }
        },
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


PATHS: dict[str, dict[str, Any]] = {
    "/orgs/{orgId}/projects/{projectId}/license": {
        "get": {
            "operationId": "wcp_license",
            "summary": "WCP: the project's license (the CMS client's protocol)",
            "description": (
                "The CMS sends the environment API key as the raw `authorization` header. "
                "Built from the organization's active contract; the signed answer is cached "
                "briefly, the standing checks run on every request."
            ),
            "tags": ["licenses"],
            "security": [{"wcpLicenseKey": []}],
            "parameters": [_path_param("orgId"), _path_param("projectId")],
            "responses": {
                "200": _json("WcpLicenseAnswer", "The license and its signed token."),
                "401": _json(
                    "WcpLicenseError", "Missing, malformed, unknown, revoked or expired key."
                ),
                "403": _json(
                    "WcpLicenseError",
                    "Environment disabled, key of another organization/project, no contract "
                    "in force, or (personal environment) seat freed / member removed.",
                ),
                "503": _json("WcpLicenseError", "Cannot sign now; see Retry-After."),
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {
            "operationId": "license_jwks",
            "summary": "Public keys of every signing key whose licenses may still be valid",
            "tags": ["licenses"],
            "security": [],
            "responses": {
                "200": _json("Jwks", "JSON Web Key Set (Ed25519)."),
                "503": _json("WcpLicenseError", "The database is unavailable; see Retry-After."),
            },
        }
    },
}


def license_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular post-processing hook: add the plain-view licensing endpoints."""
    for path, operations in PATHS.items():
        result.setdefault("paths", {}).setdefault(path, {}).update(operations)
    components = result.setdefault("components", {})
    for name, schema in SCHEMAS.items():
        components.setdefault("schemas", {}).setdefault(name, schema)
    components.setdefault("securitySchemes", {}).setdefault(
        "wcpLicenseKey",
        {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The environment API key as the raw header value (no Bearer).",
        },
    )
    return result
