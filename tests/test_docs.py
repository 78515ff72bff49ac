"""The documentation: the site builds strictly, covers every public name, and every page is reachable.

The site is built once per run (``mkdocs build --strict``, a few seconds), so a
broken link, a page missing from the nav, a docstring griffe cannot parse or a
reference to a vanished name fails the suite.
"""

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

import griffe
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# Modules whose names are not library API: the CLI is documented by its own page
# (docs/cli.md, generated from the parser), the experiments by the Figure 2, Figure 6
# and GRPO pages.
NOT_API = ("costsgd.cli", "costsgd.experiments")


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    # The griffe extensions of the site (mkdocs.yml), so docstrings read as the site reads them.
    (mkdocstrings,) = [p["mkdocstrings"] for p in _config()["plugins"] if "mkdocstrings" in p]
    paths = mkdocstrings["handlers"]["python"]["options"].get("extensions", [])
    extensions = griffe.load_extensions(*(str(ROOT / p) for p in paths))
    return griffe.load(
        "costsgd", search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True
    )


def _public_modules(module: griffe.Module):
    if module.path.startswith(NOT_API):
        return
    yield module
    for name, sub in module.modules.items():
        if not name.startswith("_") and not sub.is_alias:
            yield from _public_modules(sub)


def _final(obj):
    return obj.final_target if obj.is_alias else obj


def _rendered(site: Path, package: griffe.Module) -> set[str]:
    """Paths of the objects the API reference renders (alias chains followed to the definition)."""
    anchors = set()
    for page in (site / "api").rglob("*.html"):
        anchors |= set(re.findall(r'id="(costsgd(?:\.\w+)+)"', page.read_text(encoding="utf-8")))
    collection = package.modules_collection
    paths = set()
    for anchor in anchors:
        try:
            paths.add(_final(collection[anchor]).path)
        except (KeyError, griffe.AliasResolutionError):
            continue  # a heading's anchor that is not an object (a member of a NamedTuple, ...)
    return paths


def test_every_public_name_is_rendered_with_a_docstring(site, package):
    rendered = _rendered(site, package)
    missing, undocumented = [], []
    for module in _public_modules(package):
        for name in module.exports or ():
            where = f"{module.path}.{name}"
            try:
                target = _final(module[name])
            except (KeyError, griffe.AliasResolutionError):
                missing.append(f"{where} (griffe cannot find its definition)")
                continue
            if target.path not in rendered:
                missing.append(where)
            if not (target.docstring and target.docstring.value.strip()):
                undocumented.append(where)
    assert not missing, f"public names not rendered by docs/api/*.md: {missing}"
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_public_names_are_objects_not_shadowed_modules(package):
    # `costsgd.X` must be what `costsgd.__all__` promises, not a submodule of the same name.
    shadowed = []
    for module in _public_modules(package):
        for name in module.exports or ():
            try:
                if _final(module[name]).is_module:
                    shadowed.append(f"{module.path}.{name}")
            except (KeyError, griffe.AliasResolutionError):
                continue  # reported by the test above
    assert not shadowed, f"exported names that resolve to a module: {shadowed}"


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _excluded(relative: str, patterns: str) -> bool:
    return any(
        fnmatch.fnmatch(relative, p.strip().rstrip("/") + "/*") or fnmatch.fnmatch(relative, p)
        for p in patterns.split()
    )


def test_every_docs_page_is_in_the_nav():
    config = _config()
    nav = _nav_pages(config["nav"])
    pages = sorted(
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not _excluded(p.relative_to(DOCS).as_posix(), config.get("exclude_docs", ""))
    )
    assert sorted(set(nav)) == sorted(nav), "a page is listed twice in the nav"
    assert [p for p in pages if p not in nav] == [], "pages missing from mkdocs.yml's nav"
    assert [p for p in nav if p not in pages] == [], "nav entries without a page"


def test_readme_is_short_and_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 10_000
    assert "make demo" in text and "make test" in text
    start, end = "<!-- claims-table:start -->", "<!-- claims-table:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index(start) < text.index(end)


def test_readme_links_point_at_existing_docs_pages():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert links, "the README links into the docs"
    assert [link for link in links if not (ROOT / link).is_file()] == []
