"""The layout's rules, checked on the source (the layering itself is import-linter's, in
scripts/test.sh): no private name imported across modules, small modules, and programs
that run inside images that an old interpreter there can run."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import wheelhouse

PACKAGE = Path(wheelhouse.__file__).parent
MAX_LINES = 500
# modules allowed past MAX_LINES, each with the reason
LONGER: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def private_imports(text: str, module: str, *, package: bool = False) -> list[str]:
    """`from wheelhouse.x import _y` (or `from wheelhouse import _x`) in the source of
    `module`, where the importer is not in the package that owns the private name."""
    own_package = module if package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wheelhouse"):
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and node.module != own_package:
                    found.append(f"{module}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    hits = [
        hit
        for path in _modules()
        for hit in private_imports(
            path.read_text(), _name(path), package=path.name == "__init__.py"
        )
    ]
    assert hits == []


def test_private_imports_are_found() -> None:
    # the check itself can fail: a private name imported from outside its package is
    # found, one imported within its own package is not
    text = (
        "from wheelhouse.store.local import _flock\n"
        "from wheelhouse import _scripts\n"
        "from wheelhouse.build import _own\n"
    )
    hits = [h.split(" ")[1] for h in private_imports(text, "wheelhouse.build.plan")]
    assert hits == ["wheelhouse.store.local._flock", "wheelhouse._scripts"]


def test_modules_stay_small() -> None:
    long = {
        _name(p): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES and _name(p) not in LONGER
    }
    assert long == {}


def test_container_programs_run_on_python_38_with_the_standard_library() -> None:
    scripts = sorted((PACKAGE / "_scripts").glob("*.py"))
    assert {p.stem for p in scripts} >= {"probe", "build_wheel"}
    for path in scripts:
        tree = ast.parse(path.read_text(), feature_version=(3, 8))
        imported = {
            (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        if path.name == "__init__.py":
            continue  # the host-side loader, not run in images
        assert imported - {"__future__"} <= sys.stdlib_module_names, path.name


def test_every_command_loads_under_its_name() -> None:
    import click

    from wheelhouse.cli import COMMANDS, main

    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
