"""The house rules of docs/architecture.md, measured on the package as it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "etl_platform"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MAX_BUILD_DEFS_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if ".local" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_module_over_the_limit():
    big = {_rel(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > 500}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_function_over_the_limit():
    long = [
        f"{_rel(p)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for p in _modules()
        for f in _functions(_tree(p))
        if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "functions over the limit:\n" + "\n".join(long)


def test_every_build_defs_only_declares():
    long = [
        f"{_rel(p)}:{f.lineno} ({f.end_lineno - f.lineno + 1} lines)"
        for p in (PACKAGE / "components").rglob("*.py")
        for f in _functions(_tree(p))
        if f.name == "build_defs" and f.end_lineno - f.lineno + 1 > MAX_BUILD_DEFS_LINES
    ]
    assert not long, f"build_defs over {MAX_BUILD_DEFS_LINES} lines: {long}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").rglob("*.py")), ids=_rel)
def test_core_is_pure(path: Path):
    text = path.read_text()
    forbidden = [
        name
        for name in _imports(_tree(path))
        if name.split(".")[0] in {"boto3", "adbc_driver_postgresql", "adbc_driver_manager"}
        or name.split(".")[0] in {"dagster", "dagster_aws", "etl_platform.resources"}
        or name.startswith(("etl_platform.resources", "etl_platform.components"))
    ]
    assert not forbidden, f"{_rel(path)} imports {forbidden}"
    assert not re.search(r"\bconnect\(", text), f"{_rel(path)} opens a connection"


def test_exactly_one_s3_uri():
    places = [_rel(p) for p in _modules() if re.search(r"^\s*def s3_uri\(", p.read_text(), re.M)]
    assert len(places) == 1, places


def test_dialect_differences_live_in_the_dialect_object():
    where = PACKAGE / "core" / "warehouse"
    hits = [
        f"{_rel(p)}:{i}"
        for p in _modules()
        if where not in p.parents
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"dialect\s+(is|==|!=|is not)\s", line)
    ]
    assert not hits, hits


def test_imports_point_down_and_resources_stand_alone():
    wrong = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        layer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for name in _imports(_tree(path)):
            if layer == "resources" and name.startswith("etl_platform.components"):
                wrong.append(f"{_rel(path)} imports {name}")
            if layer == "components" and name.startswith("etl_platform.local"):
                wrong.append(f"{_rel(path)} imports {name}")
        if layer == "resources":
            siblings = {
                node.module
                for node in ast.walk(_tree(path))
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
            }
            if rel.name != "__init__.py" and siblings - {
                "aws_client",
                "copy_input",
                "source_database",
            }:
                wrong.append(f"{_rel(path)} imports resources {sorted(siblings)}")
    assert not wrong, wrong
