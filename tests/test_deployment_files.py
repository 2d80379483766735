"""docker-compose.yml, the Dockerfile and .env.example promise what the README says.
No Docker engine runs here, so the files are parsed and checked, not run."""

import re
import runpy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_has_the_production_services():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "ingest",
        "proxy",
        "worker",
        "beat",
    }


def test_the_proxy_sends_the_usage_api_to_the_ingest_service_and_the_rest_to_web():
    assert SERVICES["proxy"]["ports"] == ["8000:80"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in SERVICES["proxy"]["volumes"]
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    routes = dict(re.findall(r"location (= \S+|/) \{\s*proxy_pass http://(\w+);", conf))
    assert routes == {"= /api/v1/usage": "ingest", "= /api/v1/usage/batch": "ingest", "/": "web"}
    # /metrics is scraped on each service's own address, never through the proxy.
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", conf)
    ingest = SERVICES["ingest"]
    assert ingest["environment"]["DJANGO_SETTINGS_MODULE"] == "controlpanel.settings_ingest"
    assert ingest["command"] == SERVICES["web"]["command"]


def test_postgres_and_redis_have_healthchecks_the_app_waits_for():
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]
    for name in ("migrate", "web", "ingest", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["redis"] == {"condition": "service_healthy"}


def test_app_services_share_one_image_and_run_the_right_commands():
    for name in ("migrate", "web", "ingest", "worker", "beat"):
        assert SERVICES[name]["build"] == "."
        assert SERVICES[name]["image"] == "controlpanel:latest"
        assert SERVICES[name]["env_file"] == ".env"
        assert SERVICES[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert SERVICES[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert SERVICES["migrate"]["command"][:3] == ["python", "manage.py", "migrate"]
    assert SERVICES["web"]["command"][0] == "gunicorn"
    assert SERVICES["worker"]["command"][:4] == ["celery", "-A", "controlpanel", "worker"]
    assert SERVICES["beat"]["command"][:4] == ["celery", "-A", "controlpanel", "beat"]
    for name in ("web", "ingest", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_dockerfile_installs_the_locked_prod_group():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--constraint constraints.txt --group prod" in dockerfile
    assert "gunicorn" in dockerfile


def test_env_example_documents_every_setting_read_from_the_environment():
    settings_source = (ROOT / "controlpanel" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no settings found: the pattern is stale"
    assert read - documented == set()


def test_gunicorn_parses_requests_with_the_c_parser(monkeypatch):
    # The config asks for gunicorn-h1c (prod group) and imports it, so a missing package
    # stops gunicorn at start instead of failing every request.
    monkeypatch.delenv("GUNICORN_HTTP_PARSER", raising=False)
    config = runpy.run_path(str(ROOT / "controlpanel" / "gunicorn.conf.py"))
    assert config["http_parser"] == "fast"
    assert "gunicorn_h1c" in config


def test_gunicorn_defaults_to_keep_alive_workers_one_per_core(monkeypatch):
    import multiprocessing

    for name in ("GUNICORN_WORKER_CLASS", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(ROOT / "controlpanel" / "gunicorn.conf.py"))
    assert (config["worker_class"], config["workers"], config["threads"]) == (
        "gthread",
        multiprocessing.cpu_count(),
        4,
    )
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    assert runpy.run_path(str(ROOT / "controlpanel" / "gunicorn.conf.py"))["workers"] == 3


def test_every_package_the_product_imports_is_in_the_prod_group():
    """`make run` and the Docker image install only the prod group: a runtime import of a
    dev-only package (httpx once) breaks them while the tests stay green."""
    import ast
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    prod = {re.split(r"[\[=<>~ ]", d)[0].lower().replace("_", "-") for d in groups["prod"]}
    providers = packages_distributions()
    imported: set[str] = set()
    first_party = {"accounts", "metering", "controlpanel", "tools"}
    for package in first_party:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            # Imports under `if TYPE_CHECKING:` are for mypy only (dev group), never run.
            typing_only = {
                id(inner)
                for node in ast.walk(tree)
                if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
                for inner in ast.walk(node)
            }
            for node in ast.walk(tree):
                if id(node) in typing_only:
                    continue
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module.split(".")[0])
    third_party = {
        name for name in imported if name not in sys.stdlib_module_names and name not in first_party
    }
    missing = {
        name
        for name in third_party
        if not {d.lower().replace("_", "-") for d in providers.get(name, [name])} & prod
    }
    assert "httpx" in third_party
    assert missing == set()


def test_the_operations_guide_lists_every_variable_the_code_reads():
    """docs/operations.md's configuration reference, against the code: every env.*() call
    of the settings and every variable gunicorn.conf.py reads."""
    settings_source = "".join(
        path.read_text() for path in sorted((ROOT / "controlpanel").glob("settings*.py"))
    )
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source, re.S))
    read |= set(re.findall(r'"([A-Z_]+)" in env\b', settings_source))
    gunicorn = (ROOT / "controlpanel" / "gunicorn.conf.py").read_text()
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', gunicorn))
    guide = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", guide))
    assert len(read) > 70, "the patterns are stale"
    assert read - documented == set()
