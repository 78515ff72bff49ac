"""``costsgd verify``: the paper's claims checked live on fresh random instances
(:mod:`costsgd.claims`; docs/verify.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from costsgd.cli.common import (
    add_compile_cache_flag,
    check_output_path,
    non_negative_int,
    positive_int,
    writing,
)

__all__ = ["register"]


def register(sub) -> None:
    """Add ``verify``."""
    from costsgd.claims import CLAIMS

    p = sub.add_parser(
        "verify", help="check the paper's claims on fresh random instances (verdict table)"
    )
    p.add_argument("--quick", action="store_true", help="fewer, smaller instances (seconds)")
    p.add_argument(
        "--claim",
        action="append",
        choices=list(CLAIMS),
        metavar="NAME",
        help=f"check only this claim (repeatable; default: every claim): {', '.join(CLAIMS)}",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every instance")
    p.add_argument(
        "--out", help="write every instance's result to this JSON file (default: no file)"
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        help="processes to run the claims in (default: one per core); verdicts do not depend on it",
    )
    add_compile_cache_flag(p)
    p.set_defaults(run=_verify, parser=p)


def _compile_cache(args: argparse.Namespace):
    """The compilation cache folder, created now; JAX itself starts only in the processes
    that run JAX claims (so the others are spawned without waiting for it)."""
    from costsgd.experiments.runtime import compile_cache_dir

    folder = None if args.no_compile_cache else compile_cache_dir()
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            print(
                f"costsgd {args.command}: warning: compilation cache off, "
                f"cannot create {str(folder)!r}: {err.strerror}",
                file=sys.stderr,
            )
            folder = None
    return folder


def _verify(args: argparse.Namespace) -> int:
    from costsgd import claims
    from costsgd.experiments.results import write_text

    out = check_output_path(args.out) if args.out is not None else None
    cache = _compile_cache(args)
    jobs = args.jobs or len(os.sched_getaffinity(0))
    verdicts = claims.run(
        args.claim, seed=args.seed, quick=args.quick, jobs=jobs, compile_cache=cache
    )
    print(claims.render_text(verdicts))
    if out is not None:
        text = json.dumps(claims.to_json(verdicts, seed=args.seed, quick=args.quick), indent=1)
        with writing(out):
            write_text(out, text)  # atomic: a failed write leaves the old file whole
        print(f"wrote {out}")
    bad = claims.unexpected_failures(verdicts)
    if bad:
        print(f"claims expected to hold that failed: {', '.join(v.name for v in bad)}")
    return 1 if bad else 0
