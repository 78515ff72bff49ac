"""Rewrite Markdown files' claims tables from the quick run (seed 0):
``python -m costsgd.claims README.md docs/verify.md`` (a file whose start marker is
``<!-- claims-table:start --><!-- compact -->`` gets the compact table)."""

import os
import pathlib
import sys

from costsgd.claims.runner import render_markdown, replace_table, run, table_style


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m costsgd.claims FILE.md [FILE.md ...]", file=sys.stderr)
        return 2
    from costsgd.experiments.runtime import compile_cache_dir

    jobs = len(os.sched_getaffinity(0))
    verdicts = run(quick=True, seed=0, jobs=jobs, compile_cache=compile_cache_dir())
    for name in argv:
        path = pathlib.Path(name)
        text = path.read_text()
        path.write_text(replace_table(text, render_markdown(verdicts, compact=table_style(text))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
