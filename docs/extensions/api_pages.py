"""A mkdocs hook that writes the API reference's submodule sections from the packages' ``__all__``.

A page of ``docs/api/`` may hold a line

    <!-- api-submodules PACKAGE [exclude=MOD,MOD] -->

which this hook replaces, before the page is rendered, by one mkdocstrings
block per public submodule of ``PACKAGE`` (recursively; names with a leading
underscore and the excluded modules are skipped). Each block renders the
names of the submodule's ``__all__`` that the page does not render already:
neither the package's own exports nor a name rendered by an earlier block.
So a new submodule, or a new name in one, appears in the reference without an
edit here; the grouped top-level sections stay hand-written.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["expand", "on_page_markdown", "submodule_blocks"]

_DIRECTIVE = re.compile(r"^<!-- api-submodules (\S+)(?: exclude=(\S+))? -->$", re.M)


def _final(obj: griffe.Object | griffe.Alias) -> griffe.Object:
    return obj.final_target if obj.is_alias else obj


def _targets(module: griffe.Module) -> set[str]:
    paths = set()
    for name in module.exports or ():
        try:
            paths.add(_final(module[name]).path)
        except (KeyError, griffe.AliasResolutionError):
            continue
    return paths


def _submodules(module: griffe.Module, exclude: tuple[str, ...]):
    for name, sub in sorted(module.modules.items()):
        if name.startswith("_") or sub.is_alias or sub.path in exclude:
            continue
        yield sub
        yield from _submodules(sub, exclude)


def submodule_blocks(package: griffe.Module, exclude: tuple[str, ...] = ()) -> str:
    """Markdown for the submodules of ``package``: one ``:::`` block each, headed by its path."""
    rendered = _targets(package)
    out = []
    for module in _submodules(package, exclude):
        names = []
        for name in module.exports or ():
            try:
                path = _final(module[name]).path
            except (KeyError, griffe.AliasResolutionError):
                path = f"{module.path}.{name}"  # left for the docs test to report
            if path not in rendered:
                rendered.add(path)
                names.append(name)
        if names:
            members = "\n".join(f"        - {n}" for n in names)
            out.append(
                f"::: {module.path}\n    options:\n      show_root_heading: true\n"
                f"      heading_level: 2\n      members:\n{members}\n"
            )
    return "\n".join(out)


def expand(markdown: str) -> str:
    """Replace every ``api-submodules`` directive of ``markdown`` by its blocks."""

    def blocks(match: re.Match) -> str:
        root, exclude = match.group(1), tuple(filter(None, (match.group(2) or "").split(",")))
        top, *parts = root.split(".")
        package = griffe.load(top, search_paths=["."], resolve_aliases=True)
        for part in parts:
            package = package.modules[part]
        return submodule_blocks(package, exclude)

    return _DIRECTIVE.sub(blocks, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs hook: expand the directives of each page."""
    return expand(markdown)
