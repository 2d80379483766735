"""OpenAPI for the ingest endpoints.

They are plain Django views (the hot path skips DRF), so drf-spectacular cannot see
them; this post-processing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) adds their
paths, bodies and error bodies to the generated schema.
"""

from __future__ import annotations

from typing import Any

from metering.readings import FUTURE_SKEW
from metering.selectors import MAX_BUCKETS

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


COUNT = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
GAUGE = {
    "type": "object",
    "properties": {
        "max": {"type": "integer", "nullable": True},
        "last": {"type": "integer", "nullable": True},
    },
    "required": ["max", "last"],
}
LABEL = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$",
}

# A reading's time must lie in a window relative to its receipt (metering.readings), which
# JSON Schema cannot express: the descriptions say it.
WINDOW = (
    f"at most {int(FUTURE_SKEW.total_seconds() // 60)} minutes ahead and not older than the "
    "retention window (RETENTION_DAYS, 400 days by default)"
)
# Fields the CMS client sends that are neither validated nor stored (counts only).
IGNORED: dict[str, Any] = {"description": "Sent by the CMS; any value, not stored."}

SCHEMAS: dict[str, dict[str, Any]] = {
    "UsageReading": {
        "type": "object",
        "additionalProperties": False,
        "required": ["instance", "api_calls"],
        "properties": {
            "instance": {**LABEL, "description": "One counter source (process, container)."},
            "boot": {
                **LABEL,
                "nullable": True,
                "description": "Changes when the source's counter restarts at 0.",
            },
            "observed_at": {
                "type": "string",
                "format": "date-time",
                "nullable": True,
                "description": f"With a zone; {WINDOW}: 400 `timestamp_in_future` / "
                "`timestamp_too_old` otherwise. Absent or null: the time of receipt.",
            },
            "api_calls": {**COUNT, "description": "Cumulative API calls since this boot."},
            "seats": {**COUNT, "nullable": True, "description": "CMS users right now."},
            "tenants": {**COUNT, "nullable": True, "description": "Tenants right now."},
        },
    },
    "UsageBatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["readings"],
        "properties": {
            "readings": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": _ref("UsageReading"),
            }
        },
    },
    "UsageOutcome": {
        "type": "object",
        "required": ["counted", "duplicate", "reset", "late"],
        "properties": {
            "counted": {
                "type": "object",
                "properties": {"api_calls": COUNT},
                "required": ["api_calls"],
            },
            "duplicate": {"type": "boolean", "description": "Counted nothing new."},
            "reset": {"type": "boolean", "description": "Began a new series (a restart)."},
            "late": {"type": "boolean", "description": "Landed in a closed period; moved."},
        },
    },
    "UsageBatchOutcome": {
        "type": "object",
        "required": ["results", "counted"],
        "properties": {
            "results": {"type": "array", "items": _ref("UsageOutcome")},
            "counted": {
                "type": "object",
                "properties": {"api_calls": COUNT},
                "required": ["api_calls"],
            },
        },
    },
    "UsageSummary": {
        "type": "object",
        "required": ["environment", "from", "to", "granularity", "buckets", "totals"],
        "properties": {
            "environment": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["production", "cicd", "personal"]},
                },
            },
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "granularity": {"type": "string", "enum": ["hour", "day"]},
            "buckets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "start": {"type": "string", "format": "date-time"},
                        "api_calls": COUNT,
                        "seats": GAUGE,
                        "tenants": GAUGE,
                    },
                },
            },
            "totals": {
                "type": "object",
                "properties": {"api_calls": COUNT, "seats": GAUGE, "tenants": GAUGE},
            },
        },
    },
    "UsageError": {
        "type": "object",
        "required": ["message", "code"],
        "properties": {
            "message": {"type": "string", "description": "What is wrong and how to fix it."},
            "code": {"type": "string", "example": "wrong_type"},
            "index": {"type": "integer", "description": "The reading at fault (batches)."},
            "field": {"type": "string", "description": "The field at fault."},
        },
    },
    "WcpOperation": {
        "type": "object",
        "required": ["operation"],
        "properties": {"operation": {"type": "string", "enum": ["increment", "decrement"]}},
    },
    "WcpResult": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "operation": {"type": "string"},
            "count": {"type": "integer"},
            "limit": {"type": "integer", "nullable": True},
        },
    },
    "WcpTelemetry": {
        "type": "object",
        "required": ["logs"],
        "properties": {
            "apiKey": {
                "type": "string",
                "nullable": True,
                "description": "The environment API key; absent, null or empty: the "
                "`authorization` header's.",
            },
            "version": IGNORED,
            "logs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["createdOn"],
                    "properties": {
                        "createdOn": {
                            "type": "integer",
                            "minimum": 0,
                            "description": f"Epoch milliseconds; {WINDOW}.",
                        },
                        "error": IGNORED,
                        "executionDuration": IGNORED,
                        "functionName": IGNORED,
                    },
                },
            },
        },
    },
    "WcpError": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    },
}


def _errors(schema: str, codes: dict[int, str]) -> dict[str, Any]:
    return {str(code): _json(_ref(schema), text) for code, text in codes.items()}


NATIVE_POST_ERRORS = {
    400: "Invalid body: unknown field, wrong type, negative, >= 2^63, bad instance, bad timestamp, too many readings. `index` and `field` name the reading at fault.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    403: "The key's environment is disabled.",
    413: "Body over 1 MiB.",
    415: "Content-Type is not application/json.",
    429: "Too many requests for this key (abuse protection); see Retry-After.",
    503: "Storage unavailable; retry after Retry-After seconds.",
}
BEARER: list[dict[str, list[str]]] = [{"environmentApiKey": []}]
RAW_KEY: list[dict[str, list[str]]] = [{"wcpApiKey": []}]
WCP_ERRORS = {
    400: "Body is not JSON or not a known operation.",
    401: "Missing or invalid API key.",
    403: "Disabled environment, key of another organization/project, or a refused increment (limit reached; the message names the limit and usage).",
    503: "Storage unavailable; retry.",
}


def _text_or_json(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "text/plain": {"schema": _ref(schema)},
            "application/json": {"schema": _ref(schema)},
        },
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _gauge_path(noun: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"wcp_package_{noun}",
            "summary": f"WCP: {noun} +1/-1 (the CMS client's protocol)",
            "description": (
                "The CMS sends the API key as the raw `authorization` header and the JSON "
                "body as text/plain. An increment is refused (403) beyond the contract's "
                "cap for this environment; a decrement never goes below 0."
            ),
            "tags": ["wcp"],
            "security": RAW_KEY,
            "parameters": [_path_param("orgId"), _path_param("projectId")],
            "requestBody": _text_or_json("WcpOperation"),
            "responses": {
                "200": _json(_ref("WcpResult"), "Applied."),
                **_errors("WcpError", WCP_ERRORS),
            },
        }
    }


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/usage": {
        "post": {
            "operationId": "usage_push",
            "summary": "Push one cumulative reading",
            "tags": ["usage"],
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("UsageReading")}},
            },
            "responses": {
                "202": _json(_ref("UsageOutcome"), "Accepted; what it counted."),
                **_errors("UsageError", NATIVE_POST_ERRORS),
            },
        },
        "get": {
            "operationId": "usage_read",
            "summary": "This environment's usage per bucket and totals",
            "tags": ["usage"],
            "security": BEARER,
            "parameters": [
                {
                    "name": "from",
                    "in": "query",
                    "description": "Default: a day before `to`. Must be before `to`.",
                    "schema": {"type": "string", "format": "date-time"},
                },
                {
                    "name": "to",
                    "in": "query",
                    "description": f"Default: now. From `from` to `to` at most "
                    f"{MAX_BUCKETS['hour']} hour buckets or {MAX_BUCKETS['day']} day buckets: "
                    "400 `range_too_long` otherwise.",
                    "schema": {"type": "string", "format": "date-time"},
                },
                {
                    "name": "granularity",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["hour", "day"], "default": "hour"},
                },
            ],
            "responses": {
                "200": _json(_ref("UsageSummary"), "Usage."),
                **_errors(
                    "UsageError",
                    {
                        400: "Bad from/to/granularity, or more buckets than allowed.",
                        401: "Missing, malformed, unknown, revoked or expired API key.",
                        403: "The key's environment is disabled.",
                        503: "Storage unavailable; retry after Retry-After seconds.",
                    },
                ),
            },
        },
    },
    "/api/v1/usage/batch": {
        "post": {
            "operationId": "usage_push_batch",
            "summary": "Push up to 1,000 readings, validated whole",
            "tags": ["usage"],
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("UsageBatch")}},
            },
            "responses": {
                "202": _json(_ref("UsageBatchOutcome"), "Accepted; per reading, what it counted."),
                **_errors("UsageError", NATIVE_POST_ERRORS),
            },
        }
    },
    "/orgs/{orgId}/projects/{projectId}/package/seats": _gauge_path("seats"),
    "/orgs/{orgId}/projects/{projectId}/package/tenants": _gauge_path("tenants"),
    "/telemetry": {
        "post": {
            "operationId": "wcp_telemetry",
            "summary": "WCP telemetry: each log is one API call at createdOn",
            "description": "An identical batch sent again (a retry) counts once. Only the count and times are stored.",
            "tags": ["wcp"],
            "security": [],
            "requestBody": _text_or_json("WcpTelemetry"),
            "responses": {
                "200": _json(_ref("WcpResult"), "Counted."),
                **_errors("WcpError", WCP_ERRORS),
            },
        }
    },
}

SECURITY_SCHEMES = {
    "environmentApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An environment API key: `Authorization: Bearer cpk_...`.",
    },
    "wcpApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The environment API key as the raw header value (no Bearer).",
    },
}


def ingest_paths(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    result.setdefault("paths", {}).update(PATHS)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(SCHEMAS)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return result
