"""Every code block of README.md and docs/**/*.md runs as written, or says why it does not.

A fenced block is, by its language and content:

* a **doctest** (a ``python`` block with ``>>>`` lines): pytest's ``--doctest-glob='*.md'``
  runs it (pyproject's ``addopts``); this file checks that the page is collected;
* ``python``: the page's python blocks run in order, in one fresh interpreter, sharing one
  namespace (as a reader pastes them one after the other), in an empty folder;
* ``console``: each ``$ command`` runs in bash and must print what the block shows below it
  (stdout and stderr, whitespace-normalised; ``...`` matches anything, as in doctests);
* ``bash`` / ``sh`` / ``shell``: the block runs in bash (``set -euo pipefail``) and exits 0;
* anything else (``text``, ``yaml``, no language): never run, so it must be marked.

A marker on the line just above the fence changes that:

* ``<!-- not run: REASON -->``: not run, for the reason given (a GPU, a model download, an
  install, an hours-long study, the output of a command run elsewhere);
* ``<!-- run: verl -->``: runs only in verl's environment (``.venv-verl``, ``make test-verl``),
  where it is the only kind of block this file runs.

Commands run with this interpreter's ``bin`` folder first on ``PATH`` (``python``,
``costsgd``) and the repository on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
IN_VERL = importlib.util.find_spec("verl") is not None
TIMEOUT = 600

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<what>not run|run)\s*:\s*(?P<why>.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    marker: tuple[str, str] | None  # ("not run", reason) or ("run", environment)

    @property
    def kind(self) -> str:
        if self.language in ("python", "py", "pycon", "") and re.search(
            r"^\s*>>> ", self.code, re.M
        ):
            return "doctest"
        if self.marker and self.marker[0] == "not run":
            return "not run"
        if self.language in ("python", "py"):
            return "python"
        if self.language == "console":
            return "console"
        if self.language in ("bash", "sh", "shell"):
            return "bash"
        return "unmarked"

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def environment(self) -> str:
        return self.marker[1] if self.marker and self.marker[0] == "run" else "main"


def blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced code blocks of the Markdown file ``path``, with their markers."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        j = i + 1
        while j < len(lines) and not re.match(rf"^\s*{fence[0]}{{{len(fence)},}}\s*$", lines[j]):
            j += 1
        body = lines[i + 1 : j]
        code = "\n".join(line[indent:] if not line[:indent].strip() else line for line in body)
        marker = _MARKER.match(lines[i - 1]) if i > 0 else None
        info = opening.group("info").strip()
        out.append(
            Block(
                page=path.relative_to(root).as_posix(),
                line=i + 1,
                language=info.split()[0].lstrip(".{").rstrip("}") if info else "",
                code=code + "\n",
                marker=(marker.group("what"), marker.group("why")) if marker else None,
            )
        )
        i = j + 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "COSTSGD_NO_COMPILE_CACHE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _skip_unless_here(block: Block) -> None:
    if block.environment == "verl" and not IN_VERL:
        pytest.skip("runs in verl's environment: make test-verl")
    if block.environment == "main" and IN_VERL:
        pytest.skip("runs in the main environment: make test")


def test_every_block_runs_or_is_marked():
    unmarked = [f"{b.id} ({b.language or 'no language'})" for b in ALL if b.kind == "unmarked"]
    assert unmarked == [], "blocks that are never run need <!-- not run: REASON -->"
    empty = [b.id for b in ALL if b.marker and b.marker[0] == "not run" and len(b.marker[1]) < 8]
    assert empty == [], "a not-run marker gives its reason"
    unknown = [b.id for b in ALL if b.marker and b.marker[0] == "run" and b.marker[1] != "verl"]
    assert unknown == [], "<!-- run: ENV --> names an environment this file knows (verl)"


def test_readme_and_the_adapter_page_show_the_same_policy_gradient_code():
    readme = [b.code for b in ALL if b.page == "README.md" and b.kind == "python"]
    adapter = [b.code for b in ALL if b.page == "docs/adapter.md" and b.kind == "python"]
    assert len(readme) == 1 and readme[0] in adapter
    assert "advantages[idx" in readme[0], "the block shows where the advantage enters the loss"


def test_doctest_blocks_are_collected_by_pytest():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "--doctest-glob='*.md'" in text
    testpaths = re.search(r"^testpaths = \[(.*)\]$", text, re.M)
    assert testpaths, "pyproject sets testpaths"
    paths = re.findall(r'"([^"]+)"', testpaths.group(1))
    pages = {b.page for b in ALL if b.kind == "doctest"}
    outside = [p for p in pages if not any(p == t or p.startswith(f"{t}/") for t in paths)]
    assert outside == [], "pages with doctests that pytest does not collect"


def _pages_with_python() -> list[str]:
    return sorted({b.page for b in ALL if b.kind == "python"})


@pytest.mark.parametrize("page", _pages_with_python())
def test_python_blocks_run_in_order(page, tmp_path):
    todo = [b for b in ALL if b.page == page and b.kind == "python"]
    for block in todo:
        _skip_unless_here(block)
    # Each block is compiled with its page and line, so a traceback points into the page.
    script = "ns = {'__name__': '__main__'}\n" + "".join(
        f"exec(compile({b.code!r}, {b.id!r}, 'exec'), ns)\n" for b in todo
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"{page}: a python block failed\n{proc.stdout}\n{proc.stderr}"


def _matches(expected: str, got: str) -> bool:
    """Whitespace-normalised comparison where ``...`` in ``expected`` matches anything."""
    want = " ".join(expected.split())
    pattern = ".*".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, " ".join(got.split()), re.S) is not None


def _commands(code: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` of each ``$ `` line of a console block."""
    out: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"output before the first $ command: {line!r}")
    return [(cmd, "\n".join(expected)) for cmd, expected in out]


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "console"], ids=lambda b: b.id)
def test_console_blocks_print_what_they_show(block, tmp_path):
    _skip_unless_here(block)
    for command, expected in _commands(block.code):
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert _matches(expected, proc.stdout), f"{block.id}: $ {command}\n{proc.stdout}"


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "bash"], ids=lambda b: b.id)
def test_shell_blocks_exit_zero(block, tmp_path):
    _skip_unless_here(block)
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.code],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"{block.id}\n{proc.stdout}\n{proc.stderr}"


def test_the_runner_reads_fences_markers_and_transcripts(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- not run: needs a GPU -->\n```python\nimport torch\n```\n\n"
        "1. a step:\n\n   ```console\n   $ echo hi\n   hi\n   ```\n\n"
        "```python\n>>> 1 + 1\n2\n```\n\n```\nraw\n```\n",
        encoding="utf-8",
    )
    found = blocks(page, root=tmp_path)
    assert [(b.line, b.kind) for b in found] == [
        (4, "not run"),
        (10, "console"),
        (15, "doctest"),
        (20, "unmarked"),
    ]
    assert found[0].marker == ("not run", "needs a GPU")
    assert _commands(found[1].code) == [("echo hi", "hi")]
    assert _matches("a ... c", "a b\n c") and not _matches("a ... c", "a b d")
