"""The CMS CLI's GraphQL requests, byte for byte, and a raw HTTP/1.1 client to send them.

The documents are the CMS's own (webiny/webiny-js, v5):
- packages/cli/commands/wcp/login.js: USER_PAT_FIELDS, GENERATE_USER_PAT, GET_USER_PAT,
  CREATE_USER_PAT (`webiny login` and `webiny login <pat>`; polls every 2 s, 30 times);
- packages/cli/commands/wcp/utils/getUser.js: GET_CURRENT_USER, LIST_ORGS, LIST_PROJECTS
  (`whoami`, `project link`, the deploy hook);
- packages/cli/commands/wcp/utils/getProjectEnvironment.js: ENVIRONMENT_FIELDS,
  GET_ENVIRONMENT, CREATE_ENVIRONMENT (the deploy hook, packages/cli/commands/wcp/hooks.js);
- packages/cli/commands/wcp/utils/updateUserLastActiveOn.js: UPDATE_LAST_ACTIVE_TO_NOW;
- packages/wcp/src/urls.ts: `{WCP_API_URL}/graphql`, `{WCP_APP_URL}/login/cli`.
They are JavaScript template literals: a leading newline, four-space indentation, and the
fragments interpolated where `${...}` stands. graphql-request sends
`JSON.stringify({query, variables})` (no `variables` key when the call passes none) with
`Content-Type: application/json` over node-fetch, plus the CLI's raw `authorization`.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

USER_PAT_FIELDS = """
    fragment UserPatFields on UserPat {
        name
        meta
        token
        expiresOn
        user {
            email
        }
    }
"""

GENERATE_USER_PAT = """
    mutation GenerateUserPat {
        users {
            generateUserPat
        }
    }
"""

GET_USER_PAT = f"""
    {USER_PAT_FIELDS}
    query GetUserPat($token: ID!) {{
        users {{
            getUserPat(token: $token) {{
                ...UserPatFields
            }}
        }}
    }}
"""

CREATE_USER_PAT = f"""
    {USER_PAT_FIELDS}
    mutation CreateUserPat($expiresIn: Int, $token: ID, $data: CreateUserPatDataInput) {{
        users {{
            createUserPat(expiresIn: $expiresIn, token: $token, data: $data) {{
                ...UserPatFields
            }}
        }}
    }}
"""

GET_CURRENT_USER = """
    query GetUser {
        users {
            getCurrentUser {
                id
                email
                firstName
                lastName
            }
        }
    }
"""

LIST_ORGS = """
    query ListOrgs {
        orgs {
            listOrgs {
                data {
                    id
                    name
                }
            }
        }
    }
"""

LIST_PROJECTS = """
    query ListProjects($orgId: ID!) {
        projects {
            listProjects(orgId: $orgId) {
                data {
                    id
                    name
                    org {
                        id
                        name
                    }
                }
            }
        }
    }
"""

ENVIRONMENT_FIELDS = """
    fragment EnvironmentFields on Environment {
        id
        status
        name
        apiKey
        org {
            id
            name
        }
        project {
            id
            name
        }
        user {
            id
            email
        }
    }
"""

CREATE_ENVIRONMENT = f"""
    {ENVIRONMENT_FIELDS}
    mutation CreateEnvironment(
        $orgId: ID!
        $projectId: ID!
        $userId: ID
        $data: CreateEnvironmentDataInput!
    ) {{
        projects {{
            createEnvironment(orgId: $orgId, projectId: $projectId, userId: $userId, data: $data) {{
                ...EnvironmentFields
            }}
        }}
    }}
"""

GET_ENVIRONMENT = f"""
    {ENVIRONMENT_FIELDS}
    query GetEnvironment(
        $environmentId: ID
        $orgId: ID
        $projectId: ID
        $userId: ID
        $apiKey: String
    ) {{
        projects {{
            getEnvironment(
                environmentId: $environmentId
                orgId: $orgId
                projectId: $projectId
                userId: $userId
                apiKey: $apiKey
            ) {{
                ...EnvironmentFields
            }}
        }}
    }}
"""

UPDATE_LAST_ACTIVE_TO_NOW = """
    mutation UpdateLastActiveToNow {
        users {
            updateLastActiveToNow {
                id
                lastActiveOn
            }
        }
    }
"""


def js_json(value: Any) -> bytes:
    """JSON.stringify's bytes: no spaces, non-ASCII as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(url: str, request: bytes, *, timeout: float = 30) -> Answer:
    """Send `request` bytes as they are; read the answer to the end (Connection: close)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def cli_post(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    authorization: str | None = None,
    header_name: str = "authorization",
) -> Answer:
    """POST {base_url}/graphql as the CLI's graphql-request over node-fetch does."""
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    body = js_json(payload)
    host = urlsplit(base_url).netloc
    lines = [
        "POST /graphql HTTP/1.1",
        "Content-Type: application/json",
        *([f"{header_name}: {authorization}"] if authorization is not None else []),
        "Accept: */*",
        f"Content-Length: {len(body)}",
        "User-Agent: node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Accept-Encoding: gzip,deflate",
        "Connection: close",
        f"Host: {host}",
    ]
    return raw_request(base_url, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def data_of(answer: Answer) -> dict[str, Any]:
    """The `data` of a successful answer (the CLI fails on any `errors`)."""
    body = answer.json()
    assert answer.status == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def errors_of(answer: Answer) -> list[dict[str, Any]]:
    body = answer.json()
    assert body.get("errors"), body
    return body["errors"]
