"""A small command-line client: `python -m controlpanel.cli login | whoami | env | logout`.

Standard library only (urllib), so it runs wherever Python does. The token lives in a
JSON config file readable by its owner only: `--config`, else $CONTROLPANEL_CONFIG, else
$XDG_CONFIG_HOME/controlpanel/cli.json (~/.config/controlpanel/cli.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "controlpanel-cli/1"


class CliError(Exception):
    """Something to tell the user; exit status 1."""


def config_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("CONTROLPANEL_CONFIG"):
        return Path(os.environ["CONTROLPANEL_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "controlpanel" / "cli.json"


def load_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CliError(f"Cannot read the config file {path}: {error}") from None


def save_config(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only before the token is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    os.chmod(path, 0o600)


class Api:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, dict]:
        """(status, JSON body, headers); HTTP errors are answers too, network errors raise."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read()), dict(error.headers)
        except (urllib.error.URLError, OSError) as error:
            raise CliError(f"Cannot reach the Control Panel at {self.url}: {error}") from None


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _fail(status: int, body: dict) -> CliError:
    message = body.get("message") or f"The Control Panel answered HTTP {status}."
    return CliError(message)


def _signed_in(args: argparse.Namespace) -> tuple[Api, dict]:
    config = load_config(config_path(args.config))
    if not config.get("token"):
        raise CliError("Not logged in: run `python -m controlpanel.cli login` first.")
    return Api(args.url or config.get("url") or DEFAULT_URL, config["token"]), config


# --- commands ------------------------------------------------------------------------------
def cmd_login(args: argparse.Namespace, out: TextIO) -> int:
    path = config_path(args.config)
    url = args.url or load_config(path).get("url") or os.environ.get("CONTROLPANEL_URL")
    api = Api(url or DEFAULT_URL)
    client = args.client or f"controlpanel-cli on {platform.node() or 'this machine'}"
    status, body, _ = api.call("POST", "/api/v1/cli/sessions", {"client": client})
    if status != 201:
        raise _fail(status, body)
    print("Open this URL in your browser, sign in and approve the login:", file=out)
    print(f"  {body['login_url']}", file=out)
    print("Waiting for approval...", file=out, flush=True)
    interval = max(0.2, float(body.get("interval", 3)))
    deadline = time.monotonic() + float(body.get("expires_in", 600))
    poll = f"/api/v1/cli/sessions/{urllib.parse.quote(body['id'], safe='')}"
    while time.monotonic() < deadline:
        time.sleep(interval)
        status, result, headers = api.call("GET", poll)
        if status == 429:
            interval = max(interval, float(headers.get("Retry-After", interval)))
            continue
        if status == 200 and result.get("status") == "pending":
            continue
        if status == 200 and result.get("status") == "approved":
            user = result["user"]
            save_config(path, {"url": api.url, "token": result["token"], "user": user})
            token = result["token"]
            kind, prefix, _secret = token.split("_", 2)
            shown = f"{kind}_{prefix}_…{token[-4:]}"
            print(f"Logged in as {user['email']} (token {shown}).", file=out)
            print(f"Token saved to {path}", file=out)
            return 0
        raise _fail(status, result)
    raise CliError("The login was not approved in time; run login again.")


def cmd_whoami(args: argparse.Namespace, out: TextIO) -> int:
    api, _ = _signed_in(args)
    status, me, _ = api.call("GET", "/api/v1/me")
    if status != 200:
        raise _fail(status, me)
    print(f"{me['email']}" + (f" ({me['name']})" if me.get("name") else ""), file=out)
    for org in me.get("organizations", []):
        print(f"  {org['id']}: {org['role']}", file=out)
    status, projects, _ = api.call("GET", "/api/v1/projects")
    if status == 200:
        for project in projects.get("projects", []):
            seat = "developer seat" if project.get("developer_seat") else "manager"
            print(f"  project {project['org']['id']}/{project['id']} ({seat})", file=out)
    return 0


def cmd_env(args: argparse.Namespace, out: TextIO) -> int:
    org, sep, project = args.target.partition("/")
    if not sep or not org or not project:
        raise CliError("Give the project as <org>/<project>, for example acme/website.")
    api, _ = _signed_in(args)
    path = (
        f"/api/v1/orgs/{urllib.parse.quote(org)}/projects/{urllib.parse.quote(project)}"
        "/personal-environments"
    )
    status, body, _ = api.call("POST", path, {"name": args.name})
    if status not in (200, 201):
        raise _fail(status, body)
    if args.json:
        print(json.dumps(body, indent=2), file=out)
        return 0
    what = "created" if body.get("new") else "found; its API key was rotated"
    print(f"# Personal environment {body['name']} ({body['id']}) {what}.", file=out)
    print(f"export WCP_PROJECT_ENVIRONMENT={body['WCP_PROJECT_ENVIRONMENT']}", file=out)
    print(f"export WCP_API_URL={body['WCP_API_URL']}", file=out)
    return 0


def cmd_logout(args: argparse.Namespace, out: TextIO) -> int:
    path = config_path(args.config)
    config = load_config(path)
    if config.pop("token", None) is None:
        print("Not logged in.", file=out)
        return 0
    config.pop("user", None)
    save_config(path, config)
    print(f"Token removed from {path}; revoke it on the web if it may have leaked.", file=out)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m controlpanel.cli", description=__doc__)
    # --config and --url go before or after the command; SUPPRESS keeps a value given
    # before the command from being reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False)
    for parser_, default in ((root, None), (common, argparse.SUPPRESS)):
        parser_.add_argument(
            "--config", default=default, help="config file (default: under $XDG_CONFIG_HOME)"
        )
        parser_.add_argument(
            "--url", default=default, help=f"base URL (default: saved, or {DEFAULT_URL})"
        )
    commands = root.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login", parents=[common], help="sign in through the browser")
    login.add_argument("--client", help="name shown on the approval page")
    login.set_defaults(func=cmd_login)
    whoami = commands.add_parser("whoami", parents=[common], help="who the token acts as")
    whoami.set_defaults(func=cmd_whoami)
    env = commands.add_parser(
        "env", parents=[common], help="get (or create) a personal environment"
    )
    env.add_argument("target", metavar="ORG/PROJECT")
    env.add_argument("--name", default="dev", help="environment name (default: dev)")
    env.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    env.set_defaults(func=cmd_env)
    logout = commands.add_parser("logout", parents=[common], help="forget the saved token")
    logout.set_defaults(func=cmd_logout)
    return root


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args, out or sys.stdout)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
