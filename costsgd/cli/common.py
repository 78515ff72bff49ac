"""What every ``costsgd`` command shares: one-line errors, option types, output checks.

A command raises :class:`UserError` for anything the user can fix (a bad flag
value, an unreadable results file, an unwritable output); :func:`run_command`
prints it as one line ``costsgd <command>: error: ...`` and returns 2. Any
other exception is a bug and keeps its traceback.

A command that needs an optional dependency says so with :func:`needs` (the
modules and the extra that installs them); :func:`run_command` checks them
before the command does any work, so a missing one is the same one-line error
naming what to install. Every option's default is shown by ``--help``
(:class:`HelpFormatter`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "ArgumentParser",
    "HelpFormatter",
    "UserError",
    "add_compile_cache_flag",
    "check_output_folder",
    "check_output_path",
    "comma_list",
    "finite_float",
    "missing_modules",
    "needs",
    "non_negative_int",
    "option_errors",
    "positive_float",
    "positive_int",
    "reading",
    "run_command",
    "start_engine",
    "writing",
]


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` with each option's default: appended as ``(default: X)`` unless the help
    already states one; flags (``store_true``) and options without a default are left as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        value = action.default
        if (
            "default" in text
            or not action.option_strings
            or action.nargs == 0
            or value is None
            or value is argparse.SUPPRESS
        ):
            return text
        if isinstance(value, (tuple, list)):
            value = (" " if action.nargs in ("+", "*") else ",").join(map(str, value))
        return f"{text} (default: {str(value).replace('%', '%%')})"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``costsgd <command>: error: <message>``, exit 2) and
    defaults in ``--help`` (its subparsers too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _number(text: str, kind: Callable[[str], Any], what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    value = _number(text, float, "a finite number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _number(text, float, "a finite number > 0")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def comma_list(item: Callable[[str], Any], choices: Sequence[str] | None = None):
    """An argparse type: a non-empty comma-separated list without duplicates."""

    def parse(text: str) -> tuple:
        parts = [s.strip() for s in text.split(",") if s.strip()]
        if not parts:
            raise argparse.ArgumentTypeError("is empty: give at least one value")
        if choices is not None:
            unknown = [s for s in parts if s not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}"
                )
        try:
            values = tuple(item(s) for s in parts)
        except (ValueError, argparse.ArgumentTypeError) as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"has duplicates: {text!r}")
        return values

    return parse


def _option_of(parser: argparse.ArgumentParser, field: str) -> str:
    for action in parser._actions:
        if action.dest == field and action.option_strings:
            return "/".join(action.option_strings)
    return field


@contextlib.contextmanager
def option_errors(parser: argparse.ArgumentParser, *, validation: bool = False) -> Iterator[None]:
    """Turn a bad configuration raised in the ``with`` block into a :class:`UserError`.

    A :class:`~costsgd.experiments.results.ConfigError` names its field, which
    is reported as the option whose ``dest`` it is. With ``validation=True``
    (a block that only checks what the flags built) any ``ValueError`` or
    ``TypeError`` is the user's too; otherwise it is a bug and propagates.
    """
    from costsgd.experiments.results import ConfigError

    try:
        yield
    except ConfigError as err:
        raise UserError(f"argument {_option_of(parser, err.field)}: {err}") from err
    except (ValueError, TypeError) as err:
        if not validation:
            raise
        raise UserError(str(err)) from err


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Report an ``OSError`` raised while writing ``path`` as a :class:`UserError` naming it."""
    try:
        yield
    except OSError as err:
        raise UserError(f"cannot write {str(path)!r}: {err.strerror or err}") from err


def reading(load: Callable[[str], Any], path: str) -> Any:
    """``load(path)``, with a ``ValueError`` (missing, corrupt, foreign file) as a :class:`UserError`."""
    try:
        return load(path)
    except ValueError as err:
        raise UserError(str(err)) from err


def check_output_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Make sure ``folder`` exists (created if needed) and is writable, before any work.

    Raises:
      UserError: naming ``option``, when it is a file or cannot be written.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"argument {option}: {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"argument {option}: cannot create {str(path)!r}: {err.strerror}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"argument {option}: folder {str(path)!r} is not writable")
    return path


def check_output_path(file: str | os.PathLike, option: str = "--out") -> Path:
    """Make sure ``file`` can be written: not a folder, its folder writable.

    Raises:
      UserError: naming ``option``.
    """
    if not str(file):
        raise UserError(f"argument {option}: is empty; give a file name")
    path = Path(file)
    if path.is_dir():
        raise UserError(f"argument {option}: {str(path)!r} is a folder, not a file")
    check_output_folder(path.parent, option)
    return path


def add_compile_cache_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--no-compile-cache`` flag of the commands that run the JAX engine."""
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache "
        "(also: COSTSGD_NO_COMPILE_CACHE=1; folder: $XDG_CACHE_HOME/costsgd/jax)",
    )


def start_engine(args: argparse.Namespace) -> None:
    """Before the first compilation: the persistent compilation cache, unless turned off."""
    from costsgd.experiments.runtime import compile_cache_dir, enable_compile_cache

    folder = None if args.no_compile_cache else compile_cache_dir()
    try:
        enable_compile_cache(folder)
    except OSError as err:
        print(
            f"costsgd {args.command}: warning: compilation cache off, "
            f"cannot create {str(folder)!r}: {err.strerror}",
            file=sys.stderr,
        )


def needs(parser: argparse.ArgumentParser, *modules: str, extra: str) -> None:
    """Declare that ``parser``'s command imports ``modules``, installed by ``costsgd[extra]``."""
    parser.set_defaults(needs=(modules, extra))


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The names of ``modules`` that cannot be imported here (found without importing them)."""
    missing = []
    for name in modules:
        if name in sys.modules:
            absent = sys.modules[name] is None  # blocked, as Python's own import does
        else:
            absent = importlib.util.find_spec(name) is None
        if absent:
            missing.append(name)
    return missing


def _check_needs(args: argparse.Namespace) -> None:
    modules, extra = getattr(args, "needs", ((), ""))
    missing = missing_modules(modules)
    if missing:
        raise UserError(
            f'{args.command} needs {", ".join(missing)}: pip install "costsgd[{extra}]"'
        )


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.run(args)``; a :class:`UserError` becomes one line on stderr and exit 2.

    The optional modules the command :func:`needs` are checked first, before any work.
    """
    try:
        _check_needs(args)
        return args.run(args)
    except UserError as err:
        print(f"costsgd {args.command}: error: {err}", file=sys.stderr)
        return 2
