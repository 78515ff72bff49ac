"""Rewrite a Markdown file's claims table from the quick run (seed 0):
``python -m costsgd.claims README.md``."""

import pathlib
import sys

from costsgd.claims.runner import render_markdown, replace_table, run


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m costsgd.claims FILE.md", file=sys.stderr)
        return 2
    path = pathlib.Path(argv[0])
    path.write_text(replace_table(path.read_text(), render_markdown(run(quick=True, seed=0))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
