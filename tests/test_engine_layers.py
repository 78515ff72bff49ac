"""The engine package's imports run one way: each module imports only the layers below it.

Read from the source (every import statement, at module level or inside a
function), so a lazy import that climbs a layer fails too.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "costsgd" / "engine"

# Bottom to top; a module may import the modules of the layers before its own.
LAYERS = [
    {"_kernel", "_schedules", "_checks", "_native"},
    {"_arrays", "_options"},
    {"_algorithm", "_trial"},
    {"_batch"},
    {"_driver"},
    {"__init__"},
]
# Parts of costsgd below the engine (DESIGN.md's layer table); everything else is above it.
BELOW = {"costsgd._validate", "costsgd._numerics", "costsgd.samplers", "costsgd.draw",
         "costsgd.theory", "costsgd.problems"}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(path: Path) -> set[str]:
    """The costsgd modules that ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "costsgd"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "costsgd":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


def layer_of(name: str) -> int:
    short = name.rsplit(".", 1)[-1] if name != "costsgd.engine" else "__init__"
    (k,) = [k for k, layer in enumerate(LAYERS) if short in layer]
    return k


def test_every_engine_module_has_a_layer():
    modules = {p.stem for p in ENGINE.glob("*.py")}
    assert modules == set().union(*LAYERS), "add the new module to LAYERS"


def test_engine_modules_import_only_layers_below_their_own():
    climbs = []
    for path in sorted(ENGINE.glob("*.py")):
        me = _module_name(path)
        for dep in sorted(imports(path)):
            if dep.startswith("costsgd.engine"):
                if dep == me or layer_of(dep) >= layer_of(me):
                    climbs.append(f"{me} imports {dep}")
            elif not any(dep == b or dep.startswith(b + ".") for b in BELOW):
                climbs.append(f"{me} imports {dep}, which is above the engine")
    assert not climbs, climbs


def _files(name: str) -> list[Path]:
    """The source files of module or package ``name``."""
    path = ROOT.joinpath(*name.split("."))
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def test_nothing_below_the_engine_imports_it():
    up = []
    for name in sorted(BELOW):
        for path in _files(name):
            for dep in imports(path):
                if dep.startswith("costsgd.engine") or dep == "costsgd":
                    up.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not up, up


def test_the_checker_sees_a_climbing_import(tmp_path):
    """The reader finds function-level imports and ``from pkg import module`` forms."""
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from costsgd.engine import _driver\n    import costsgd.engine._batch\n"
    )
    assert imports(source) == {"costsgd.engine._driver", "costsgd.engine._batch"}
    assert layer_of("costsgd.engine._driver") > layer_of("costsgd.engine._kernel")


def test_engine_docstrings_hold_no_control_characters():
    """A backslash escape in a non-raw docstring (``\\b`` of ``\\bar``) turns into a control
    character that the API reference renders as garbage."""
    bad = []
    for path in sorted(ENGINE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node, clean=False) or ""
                if any(ord(ch) < 32 and ch not in "\n\t" for ch in doc):
                    bad.append(f"{path.name}: {getattr(node, 'name', 'module')}")
    assert not bad, bad
