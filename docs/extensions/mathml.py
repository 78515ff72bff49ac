"""A mkdocs hook that typesets the site's maths as MathML when the site is built.

``pymdownx.arithmatex`` (generic mode) leaves each formula as TeX in
``<span class="arithmatex">\\(...\\)</span>`` (inline) or
``<div class="arithmatex">\\[...\\]</div>`` (display). This hook replaces the TeX
by MathML from ``latex2mathml`` (pure Python), which browsers render natively
(MathML Core), so the site shows its maths with no script and no network.

MathML Core draws ``mathvariant`` only as ``normal``; script, double-struck,
bold and fraktur letters (``\\mathcal K``, ``\\mathbb E``) are written as the
Unicode mathematical letters instead. A formula that does not convert, that
holds a TeX command the converter does not know (it would show as ``\\foo``), or
that holds a control character (a docstring's ``\\b`` that Python read as a
backspace) is logged as a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from typing import Any

from latex2mathml.converter import convert

__all__ = ["on_page_content", "styled", "to_mathml", "typeset"]

log = logging.getLogger("mkdocs.hooks.mathml")

_FORMULA = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]\s*</(?P=tag)>',
    re.S,
)
_VARIANT = re.compile(r'<mi mathvariant="(?P<variant>[a-z-]+)">(?P<text>[^<]*)</mi>')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: mathvariant -> the style word of the Unicode names ("MATHEMATICAL SCRIPT CAPITAL K").
_STYLES = {
    "script": "SCRIPT",
    "double-struck": "DOUBLE-STRUCK",
    "bold": "BOLD",
    "fraktur": "FRAKTUR",
    "italic": "ITALIC",
    "bold-italic": "BOLD ITALIC",
    "sans-serif": "SANS-SERIF",
    "monospace": "MONOSPACE",
}
#: The letters Unicode encodes in Letterlike Symbols instead (holes of the mathematical block).
_LETTERLIKE = {"SCRIPT": "SCRIPT", "DOUBLE-STRUCK": "DOUBLE-STRUCK", "FRAKTUR": "BLACK-LETTER"}


class MathError(ValueError):
    """A formula that cannot be shown as written."""


def styled(text: str, variant: str) -> str:
    """``text`` with each Latin letter in the Unicode style of MathML's ``mathvariant``.

    Examples:
        >>> styled("K", "script"), styled("E", "double-struck"), styled("R", "double-struck")
        ('𝒦', '𝔼', 'ℝ')
        >>> styled("x1", "bold")
        '𝐱1'
    """
    style = _STYLES[variant]
    out = []
    for ch in text:
        if not ("A" <= ch <= "Z" or "a" <= ch <= "z"):
            out.append(ch)
            continue
        case = "CAPITAL" if ch.isupper() else "SMALL"
        try:
            out.append(unicodedata.lookup(f"MATHEMATICAL {style} {case} {ch.upper()}"))
        except KeyError:
            out.append(unicodedata.lookup(f"{_LETTERLIKE[style]} {case} {ch.upper()}"))
    return "".join(out)


def _restyle(mathml: str) -> str:
    def letters(m: re.Match) -> str:
        variant, text = m.group("variant"), m.group("text")
        if variant not in _STYLES:
            return m.group(0)
        return f"<mi>{styled(text, variant)}</mi>"

    return _VARIANT.sub(letters, mathml)


def to_mathml(tex: str, *, display: bool = False) -> str:
    r"""MathML for the TeX formula ``tex``.

    Raises:
        MathError: ``tex`` holds a control character, does not convert, or uses a
            command the converter leaves as text.

    Examples:
        >>> m = to_mathml(r"\mathcal K = \sqrt{c_i}")
        >>> m.startswith("<math"), "<msqrt>" in m, "<mi>𝒦</mi>" in m, "mathvariant" in m
        (True, True, True, False)
        >>> for tex in (r"\frob x", "t\bar x"):
        ...     try:
        ...         to_mathml(tex)
        ...     except MathError as err:
        ...         print(err)
        unknown TeX command \frob in '\\frob x'
        control character in 't\x08ar x' (a non-raw docstring's backslash?)
    """
    if _CONTROL.search(tex):
        raise MathError(f"control character in {tex!r} (a non-raw docstring's backslash?)")
    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception as err:  # the converter raises many types on malformed TeX
        raise MathError(f"cannot convert {tex!r}: {type(err).__name__}: {err}") from err
    texts = (html.unescape(t) for t in re.findall(r">([^<]+)<", mathml))
    unknown = [t for t in texts if "\\" in t]
    if unknown:
        raise MathError(f"unknown TeX command {', '.join(unknown)} in {tex!r}")
    return _restyle(mathml)


def typeset(page_html: str, where: str = "page") -> str:
    """Replace every arithmatex formula of ``page_html`` by MathML; log a warning per failure."""

    def replace(m: re.Match) -> str:
        tex = html.unescape(m.group("tex")).strip()
        display = m.group("open") == "["
        try:
            mathml = to_mathml(tex, display=display)
        except MathError as err:
            log.warning("%s: %s", where, err)
            return m.group(0)
        return f'<{m.group("tag")} class="arithmatex">{mathml}</{m.group("tag")}>'

    return _FORMULA.sub(replace, page_html)


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """mkdocs hook: typeset the maths of each page's HTML."""
    return typeset(html, page.file.src_uri)
