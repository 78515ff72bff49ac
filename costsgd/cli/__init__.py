"""The ``costsgd`` command line.

Each command lives in a module of this package with a ``register(subparsers)``
function that adds its subparser and sets the defaults ``run`` (the function
to call with the parsed arguments) and ``parser`` (the subparser), and declares
the optional modules it imports with :func:`costsgd.cli.common.needs`; adding a
command is one module and one entry in :data:`COMMANDS`. Every command runs
through :func:`costsgd.cli.common.run_command`: user errors, a missing extra
included, are one line and exit 2. ``costsgd --version`` prints the version;
``python -m costsgd`` is the same command line.
"""

from __future__ import annotations

from costsgd.cli import audit, figures, grpo, info, plot, predict, verify
from costsgd.cli.common import ArgumentParser, run_command

__all__ = ["COMMANDS", "build_parser", "main"]

#: Modules whose ``register`` adds one or more subcommands, in help order.
COMMANDS = (predict, figures, grpo, plot, verify, audit, info)


def build_parser() -> ArgumentParser:
    """The ``costsgd`` parser with every command of :data:`COMMANDS`."""
    from costsgd import __version__

    parser = ArgumentParser(prog="costsgd", description="Cost-aware learning (costsgd).")
    parser.add_argument("--version", action="version", version=f"costsgd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``costsgd`` command; returns its exit status (2 for a user error)."""
    from costsgd.experiments.runtime import use_all_cores

    use_all_cores()  # before JAX starts: one device per core
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:  # reported by the command's own parser, so its name prefixes the line
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # --help (0) or a bad flag (2, its line already printed)
        return stop.code if isinstance(stop.code, int) else 2
    return run_command(args)
