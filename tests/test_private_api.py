"""Product code uses only public Django and library APIs: no name starting with `_` is
imported from outside the project, and no `_attribute` of another object is read (a
private name of Django's connection, cache backend or cursor changes without notice)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("accounts", "metering", "controlpanel", "tools")
# Public despite the underscore: Model._meta (Django's documented Model _meta API) and
# namedtuple's methods (underscored only so they cannot clash with field names).
PUBLIC = {"_meta", "_make", "_asdict", "_replace", "_fields"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, text) of each private name `source` takes from outside the project."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PRODUCT:
                continue
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if any(_private(part) for part in parts):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(part) for part in alias.name.split(".")):
                    found.append((node.lineno, ast.unparse(node)))
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in PUBLIC
            # self._x / cls._x: the class's own names.
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_finds_private_imports_and_attributes():
    source = (
        "from django.http.request import _get_raw_host\n"
        "from django.utils._os import safe_join\n"
        "from metering.compliance.evaluation import _in_force\n"
        "with connection._prepare_cursor(raw) as cursor: pass\n"
        "client = backend._cache.get_client()\n"
        "label = Flag._meta.label_lower; self._cached = row._asdict()\n"
    )
    assert [line for line, _ in private_uses(source)] == [1, 2, 4, 5]


def test_product_code_uses_no_private_django_or_library_api():
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, text in private_uses(path.read_text()):
                found.append(f"{relative}:{line}: {text}")
    assert found == []
