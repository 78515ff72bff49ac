r"""The engine's native backend: compiled step loops of problem types, built once and checked.

A problem type may bring a compiled loop of many steps
(:class:`costsgd.problems.NativeLoop`: a C++ XLA FFI handler, least squares
has one). :func:`load` builds its source on first use with the machine's C++
compiler (``$CXX``, else ``c++``/``g++``/``clang++``), against the XLA FFI
headers that ship with jaxlib, into the per-user cache folder
(``$XDG_CACHE_HOME/costsgd/native``), registers the handler with XLA and
returns the target's name. The file name holds a hash of the source, the
compiler, its flags, jaxlib's version and the CPU, so a change to any of them
builds a new library.

A library never takes the process down: it is loaded only after it passed
its checks, its size and a SHA-256 checksum written beside it at build time,
and a build is published only after a child process has loaded it and found
its handler. A library that fails its checks (truncated, foreign, stale) is
rebuilt in the same process with a one-line notice. One build runs at a time
across processes (a file lock in the cache folder): the others wait and use
its result. Compiler settings that cannot be parsed, no compiler, or a failed
build mean "no native loop", with the reason (:func:`status`).
``COSTSGD_NATIVE=0`` turns the backend off.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["NATIVE_ENV", "NativeStatus", "cache_folder", "load", "notice", "status"]

#: Set to ``0`` (or ``false``/``no``) to run XLA's step instead of any native loop.
NATIVE_ENV = "COSTSGD_NATIVE"

_LOG = logging.getLogger("costsgd.engine")
_FLAGS = ("-std=c++17", "-O3", "-fopenmp-simd", "-fPIC", "-shared", "-w")
_TIMEOUT = 600


class NativeStatus(NamedTuple):
    """Whether a native loop can run in this process, and why not when it cannot."""

    available: bool
    reason: str  #: empty when available
    library: Path | None  #: the checked library (None when unavailable or not built yet)
    compiler: str  #: the compiler's command and first ``--version`` line, or ""
    flags: str  #: the flags the library was (or will be) built with, or ""
    target: str = ""  #: the XLA target its handler is registered under, when loaded


_STATE: dict[Any, NativeStatus] = {}
_NOTICES: set[str] = set()
_LOCK = threading.Lock()


def notice(message: str) -> None:
    """A one-line notice on the ``costsgd.engine`` logger (printed to stderr when logging
    is not configured), once per process and message."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        _LOG.warning("costsgd: %s", message)


def _turned_off() -> str:
    value = os.environ.get(NATIVE_ENV, "").strip()
    return f"turned off by {NATIVE_ENV}={value}" if value.lower() in ("0", "false", "no") else ""


def status(loop: Any, *, build: bool = True) -> NativeStatus:
    """Build (on first use), check, load and register ``loop``; say whether it is available.

    Args:
      loop: a :class:`costsgd.problems.NativeLoop`.
      build: ``False``: only report (a library not built yet is "not built yet").

    Examples:
      >>> from costsgd.problems import gradient_step, least_squares
      >>> st = status(gradient_step(least_squares(20, 2)).native)
      >>> st.available or bool(st.reason)
      True
    """
    off = _turned_off()
    if off:
        return NativeStatus(False, off, None, "", "")
    key = (loop.source, loop.symbol)
    with _LOCK:
        if key not in _STATE:
            if not build:
                return _peek(loop)
            _STATE[key] = _load(loop)
        return _STATE[key]


def load(loop: Any) -> str:
    """The XLA target ``loop``'s handler is registered under; ``RuntimeError`` with the
    reason when the loop is unavailable."""
    st = status(loop)
    if not st.available:
        raise RuntimeError(f"the native step loop is unavailable: {st.reason}")
    return st.target


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/costsgd/native``, else a private folder in the temporary directory.

    Raises:
      RuntimeError: neither folder is private to this user.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "costsgd" / "native"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if _private(folder):
            return folder
    except OSError:
        pass
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    folder = Path(tempfile.gettempdir()) / f"costsgd-native-{user}"
    try:
        folder.mkdir(exist_ok=True, mode=0o700)
    except OSError as err:
        raise RuntimeError(f"cannot create the cache folder {folder}: {err}") from err
    if not _private(folder):
        raise RuntimeError(
            f"{folder} is not private to this user; set XDG_CACHE_HOME to a folder of yours"
        )
    return folder


def _private(folder: Path) -> bool:
    """Whether ``folder`` is this user's and writable by nobody else (a library loaded from
    a folder another user can write to could be replaced by theirs)."""
    st = folder.stat()
    mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return mine and not st.st_mode & 0o022 and os.access(folder, os.W_OK)


def _compiler() -> tuple[list[str], str]:
    """The compiler command and its first ``--version`` line: ``$CXX`` (which may hold
    arguments, ``ccache g++``), else the first of ``c++``, ``g++``, ``clang++`` on the PATH.

    Raises:
      RuntimeError: ``$CXX`` cannot be parsed or found, or no compiler is on the PATH.
    """
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        try:
            cmd = shlex.split(cxx)
        except ValueError as err:
            raise RuntimeError(f"CXX={cxx!r} cannot be parsed: {err}") from None
        if not cmd or not shutil.which(cmd[0]):
            raise RuntimeError(f"CXX={cxx!r}: {cmd[0] if cmd else 'nothing'} not found")
    else:
        found = [shutil.which(name) for name in ("c++", "g++", "clang++")]
        cmd = [next((f for f in found if f), "")]
        if not cmd[0]:
            raise RuntimeError("no C++ compiler found (set CXX, or install g++ or clang++)")
    try:
        done = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(f"{' '.join(cmd)} --version failed: {err}") from None
    return cmd, (done.stdout.strip().splitlines() or [""])[0]


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(keep)) or platform.machine()


def _candidates(loop: Any, cmd: list[str], version: str, folder: Path):
    """``(flags, library path)`` to try, best first: with ``-march=native``, then without."""
    import jaxlib

    out = []
    for flags in ((*_FLAGS, "-march=native"), _FLAGS):
        key = [Path(loop.source).read_text(), loop.symbol, " ".join(cmd), version,
               " ".join(flags), jaxlib.__version__, _cpu()]  # fmt: skip
        digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
        out.append((flags, folder / f"{Path(loop.source).stem.lstrip('_')}-{digest}.so"))
    return out


def _sidecar(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(library: Path) -> str:
    """Why ``library`` must not be loaded ("" when it passes): missing, empty, no checksum,
    or a checksum that does not match its bytes (truncated, replaced)."""
    try:
        if library.stat().st_size == 0:
            return "it is empty"
        want = _sidecar(library).read_text().split()
    except FileNotFoundError as err:
        return "it has no checksum" if Path(err.filename) != library else "missing"
    except OSError as err:
        return f"it cannot be read: {err}"
    if not want or want[0] != _digest(library):
        return "its checksum does not match (truncated or replaced)"
    return ""


def _describe(cmd: list[str], version: str) -> str:
    return f"{' '.join(cmd)} ({version})" if version else " ".join(cmd)


def _peek(loop: Any) -> NativeStatus:
    """The status without building or loading anything."""
    try:
        cmd, version = _compiler()
        candidates = _candidates(loop, cmd, version, cache_folder())
    except (OSError, RuntimeError) as err:
        return NativeStatus(False, str(err), None, "", "")
    compiler = _describe(cmd, version)
    for flags, library in candidates:
        if not _check(library):
            return NativeStatus(True, "", library, compiler, " ".join(flags))
    return NativeStatus(
        False, "not built yet (builds on first use)", None, compiler, " ".join(candidates[0][0])
    )


def _load(loop: Any) -> NativeStatus:
    import jax

    try:
        cmd, version = _compiler()
        library, flags = _build(loop, cmd, version)
        handler = getattr(ctypes.CDLL(str(library)), loop.symbol)
    except (OSError, AttributeError, RuntimeError, subprocess.SubprocessError) as err:
        return NativeStatus(False, str(err), None, "", "")
    target = f"costsgd_{library.stem.replace('-', '_')}"
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(handler), platform="cpu")
    return NativeStatus(True, "", library, _describe(cmd, version), " ".join(flags), target)


@contextlib.contextmanager
def _exclusive(folder: Path):
    """Hold the cache folder's build lock (across processes where ``fcntl`` exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: builds publish atomically, duplicates are harmless
        yield
        return
    with open(folder / ".build.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(loop: Any, cmd: list[str], version: str) -> tuple[Path, tuple[str, ...]]:
    """A checked library of ``loop``: an existing one, or one built now (under the lock)."""
    folder = cache_folder()
    candidates = _candidates(loop, cmd, version, folder)
    for flags, library in candidates:
        if not _check(library):
            return library, flags
    with _exclusive(folder):
        for flags, library in candidates:  # another process may have built it meanwhile
            why = _check(library)
            if not why:
                return library, flags
            if why != "missing":
                notice(
                    f"the native loop's library {library} fails its check ({why}): rebuilding it"
                )
                library.unlink(missing_ok=True)
                _sidecar(library).unlink(missing_ok=True)
        error = ""
        for flags, library in candidates:
            error = _compile(loop, cmd, version, flags, library)
            if not error:
                return library, flags
    raise RuntimeError(f"building {Path(loop.source).name} with {' '.join(cmd)} failed: {error}")


def _compile(loop: Any, cmd: list[str], version: str, flags, library: Path) -> str:
    """Compile, check in a child process and publish ``library``; the error, or ""."""
    import jax

    notice(
        f"building the native step loop {library.name} with {_describe(cmd, version)} "
        "(once per machine, a few seconds)"
    )
    folder = library.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{library.name}.", suffix=".tmp")
    os.close(fd)
    try:
        src = str(loop.source)
        full = [*cmd, *flags, f"-I{jax.ffi.include_dir()}", src, "-o", tmp]
        done = subprocess.run(full, capture_output=True, text=True, timeout=_TIMEOUT)
        if done.returncode != 0:
            return _first_error(done.stderr, done.returncode)
        probe = f"import ctypes, sys; getattr(ctypes.CDLL(sys.argv[1]), {loop.symbol!r})"
        child = subprocess.run(
            [sys.executable, "-c", probe, tmp], capture_output=True, text=True, timeout=120
        )
        if child.returncode != 0:
            last = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
            return f"the built library does not load in a child process: {last}"
        checksum = _sidecar(Path(tmp))
        checksum.write_text(f"{_digest(Path(tmp))}  {library.name}\n")
        os.replace(checksum, _sidecar(library))
        os.replace(tmp, library)
        return ""
    finally:
        Path(tmp).unlink(missing_ok=True)
        _sidecar(Path(tmp)).unlink(missing_ok=True)


def _first_error(stderr: str, returncode: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [f"exit status {returncode}"])[0]
