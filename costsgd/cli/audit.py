"""``costsgd audit``: what Cost-Aware GRPO would save on rollouts you already logged.

Reads rollout files (the generic format or verl's dumps), prints the table,
writes ``audit.json`` and ``audit.png`` to ``--out``. Bad input is one line
naming the file, line and column, exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from costsgd.cli.common import (
    UserError,
    check_output_folder,
    positive_float,
    positive_int,
    writing,
)

__all__ = ["register"]


def register(sub) -> None:
    """Add ``audit``."""
    p = sub.add_parser(
        "audit",
        help="expected token savings of Cost-Aware GRPO on your own logged rollouts",
        description="Expected drawn tokens per iteration of p*, p*_smooth, zero-advantage "
        "removal and the length proxy relative to no sampling, on logged rollout pools "
        "(docs/audit.md).",
    )
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="rollout files or folders")
    p.add_argument(
        "--format",
        choices=("generic", "verl"),
        default="generic",
        help="generic (JSONL/CSV/Parquet, documented columns; default) or verl "
        "(trainer.rollout_data_dir dumps: needs --tokenizer)",
    )
    p.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="a local Hugging Face tokenizer folder, to count the tokens of verl dumps "
        "(nothing is downloaded; default: none, which --format verl refuses)",
    )
    p.add_argument(
        "--reward-normalization",
        choices=("group", "batch", "none"),
        help="advantages from rewards: group (divide by the group's std, TRL's default and "
        "verl's norm_adv_by_std_in_grpo; the default), batch, or none (mean-centred only)",
    )
    p.add_argument(
        "--noise-scale",
        type=positive_float,
        help="your gradient-noise scale B_noise, if known (with --minibatch-size: chooses the "
        "regime; default: unknown, no regime chosen)",
    )
    p.add_argument(
        "--minibatch-size", type=positive_int, help="your mini-batch size B (default: unknown)"
    )
    p.add_argument("--out", default="audit", help="output folder (default: audit)")
    p.set_defaults(run=_audit, parser=p)


def _load_tokenizer(folder: str):
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"argument --tokenizer: {folder!r} is not a folder")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UserError("argument --tokenizer: reading verl dumps needs transformers") from None
    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"argument --tokenizer: cannot load a tokenizer from {folder!r}: {first}"
        ) from None


def _audit(args: argparse.Namespace) -> int:
    from costsgd.audit import AuditInputError, audit_files, format_table, plot_audit
    from costsgd.experiments.results import write_atomic

    if (args.noise_scale is None) != (args.minibatch_size is None):
        raise UserError("--noise-scale and --minibatch-size go together: give both or neither")
    if args.format == "verl" and args.tokenizer is None:
        raise UserError("argument --tokenizer: --format verl needs it (verl dumps hold text only)")
    if args.format == "generic" and args.tokenizer is not None:
        raise UserError("argument --tokenizer: only for --format verl")
    out = check_output_folder(args.out)
    tokenizer = _load_tokenizer(args.tokenizer) if args.tokenizer else None
    try:
        result = audit_files(
            args.paths,
            format=args.format,
            tokenizer=tokenizer,
            reward_normalization=args.reward_normalization,
            noise_scale=args.noise_scale,
            minibatch_size=args.minibatch_size,
        )
    except AuditInputError as err:
        raise UserError(str(err)) from None
    except ImportError as err:
        if err.name != "pyarrow":
            raise
        raise UserError(str(err)) from None
    except OSError as err:
        raise UserError(f"cannot read {err.filename!r}: {err.strerror}") from None
    json_path, png = out / "audit.json", out / "audit.png"
    with writing(json_path):
        write_atomic(json_path, lambda f: f.write(json.dumps(result, indent=1).encode()))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        figure = "not drawn: matplotlib is not installed (pip install 'costsgd[plot]')"
    else:
        with writing(png):
            plot_audit(result, png)
        figure = str(png)
    print(format_table(result))
    if result["skipped_files"]:
        print(f"not read (other suffixes): {', '.join(result['skipped_files'])}")
    print(f"results: {json_path}\nfigure:  {figure}")
    return 0
