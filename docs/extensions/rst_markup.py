"""A griffe extension that turns the reST markup of costsgd's docstrings into Markdown.

The docstrings are Google style with Sphinx-flavoured inline markup (``:func:`x```,
``:math:`x```, ``.. math::`` blocks), which reads well in ``help()`` and in the
source. mkdocstrings renders docstrings as Markdown, so before rendering this
extension rewrites

* ``.. math::`` blocks to ``$$ ... $$`` display math and ``:math:`x``` to ``\\(x\\)``
  (both typeset by ``pymdownx.arithmatex``);
* cross-reference roles (``:func:``, ``:class:``, ``:mod:``, ...) to code spans;
* reST double-backtick literals to Markdown code spans;

and splits an ``Args:`` entry that documents several parameters at once
(``costs, valid: as in ...``, as numpy-style docstrings allow) into one entry
per parameter, so each is matched to the signature (its default shown, no
"does not appear in the signature" warning). It reads the ``#:`` comment
lines above a module or class attribute as that attribute's docstring (the
Sphinx convention some modules use for constants).
Only the rendered copy changes; the sources stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["RstMarkup", "comment_docstring", "split_grouped_args", "to_markdown"]

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_ARGS = re.compile(r"^(\s*)(?:Args|Arguments|Parameters|Params|Keyword Args|Other Parameters):\s*$")
_GROUPED = re.compile(r"^(\w+(?:\s*,\s*\w+)+)(\s*\([^)]*\))?:(.*)$")


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, first = m.group(1), m.group(2)
        body = [first] if first else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        out += ["", f"{indent}$$", *(f"{indent}{b}" for b in body if b), f"{indent}$$", ""]
    return out


def split_grouped_args(text: str) -> str:
    r"""Give each name of a grouped ``Args:`` entry (``a, b: text``) an entry of its own.

    Examples:
        >>> print(split_grouped_args("Args:\n  x, y: the point,\n    in metres.\n  z: a label."))
        Args:
          x: the point,
            in metres.
          y: the point,
            in metres.
          z: a label.
    """
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        out.append(lines[i])
        header = _ARGS.match(lines[i])
        i += 1
        if not header:
            continue
        items: list[list[str]] = []
        item_indent = None
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(header.group(1))):
            if item_indent is None and lines[i].strip():
                item_indent = _indent(lines[i])
            if (lines[i].strip() and _indent(lines[i]) == item_indent) or not items:
                items.append([lines[i]])
            else:
                items[-1].append(lines[i])
            i += 1
        for item in items:
            grouped = _GROUPED.match(item[0].strip())
            if not grouped:
                out += item
                continue
            names, kind, first = grouped.groups()
            for name in names.split(","):
                out += [f"{' ' * (item_indent or 0)}{name.strip()}{kind or ''}:{first}", *item[1:]]
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _code_span(role: re.Match) -> str:
    tilde, target = role.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def to_markdown(text: str) -> str:
    r"""Rewrite reST math, roles and literals in ``text`` as Markdown.

    Examples:
        >>> to_markdown("Uses :func:`optimal` and ``p``: :math:`p \\propto G`.")
        'Uses `optimal` and `p`: \\(p \\propto G\\).'
        >>> to_markdown(":class:`~costsgd.draw.AliasTable`")
        '`AliasTable`'
        >>> print(to_markdown("Eq. 1:\n.. math::\n   S = T\n   + U\nso on."))
        Eq. 1:
        <BLANKLINE>
        $$
        S = T
        + U
        $$
        <BLANKLINE>
        so on.
    """
    text = split_grouped_args("\n".join(_math_blocks(text.split("\n"))))
    text = _MATH.sub(lambda m: rf"\({m.group(1)}\)", text)
    text = _ROLE.sub(_code_span, text)
    return _LITERAL.sub(r"`\1`", text)


def comment_docstring(source_lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment block ending just above 1-based line ``lineno``, or ``None``.

    Examples:
        >>> comment_docstring(["#: Sizes tried,", "#: smallest first.", "SIZES = (1, 2)"], 3)
        'Sizes tried,\\nsmallest first.'
        >>> comment_docstring(["# a plain comment", "X = 1"], 2) is None
        True
    """
    block = []
    i = lineno - 2
    while i >= 0 and source_lines[i].lstrip().startswith("#:"):
        block.insert(0, source_lines[i].lstrip()[2:].strip())
        i -= 1
    return "\n".join(block) if block else None


class RstMarkup(griffe.Extension):
    """Rewrite every loaded object's docstring with :func:`to_markdown`."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        """Give an attribute without a docstring its ``#:`` comment block, if it has one."""
        if attr.docstring is None and attr.lineno is not None:
            filepath = attr.filepath
            lines = attr.lines_collection[filepath] if filepath in attr.lines_collection else []
            text = comment_docstring(lines, attr.lineno) if lines else None
            if text:
                attr.docstring = griffe.Docstring(to_markdown(text), parent=attr)

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Convert ``obj``'s docstring in place (griffe calls this for each object)."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
