"""The native backend (costsgd/engine/_native.py) and least squares' native loop: against
XLA's step, its fallbacks, and a cache that can never take a process down.

Nothing here builds the loop at collection: the tests that need it ask the ``loop`` fixture.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import costsgd as cs
from costsgd.problems import GradientStep, NativeLoop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_COMPILER = any(shutil.which(c) for c in ("c++", "g++", "clang++"))
LOOP = cs.LeastSquares.gradient_step.native


@pytest.fixture(scope="module")
def loop():
    """The least-squares loop's status, built on first use (skips where it cannot build)."""
    st = cs.engine.native_status(LOOP)
    if not st.available:
        pytest.skip(f"the native step loop cannot be built on this machine ({st.reason})")
    return st


def options(backend, **kw):
    return cs.EngineOptions(backend=backend, **kw)


def run(prob, P, backend, trials=3, steps=400, step_size=None, **kw):
    return cs.cost_aware_sgd(
        prob,
        P,
        steps=steps,
        trials=trials,
        key=kw.pop("key", 3),
        checkpoints=[1, 5, 77, steps],
        step_size=np.full(len(P), 2e-3) if step_size is None else step_size,
        x0=kw.pop("x0", None),
        options=options(backend, **kw),
    )


def assert_same(a, b, rtol):
    for name in ("cost", "error_average", "error_suffix", "error_last"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
    for name in ("x", "average"):
        got, want = getattr(a.final, name), getattr(b.final, name)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    np.testing.assert_allclose(a.final.cost, b.final.cost, rtol=rtol)
    np.testing.assert_array_equal(a.final.t, b.final.t)


@pytest.fixture
def counted(monkeypatch):
    """Count the traces that go through the native loop (least squares' step, wrapped)."""
    calls = []

    def call(*args):
        calls.append(args[1].shape)
        return LOOP.call(*args)

    step = cs.LeastSquares.gradient_step
    monkeypatch.setattr(cs.LeastSquares, "gradient_step", step._replace(
        native=LOOP._replace(call=call)))  # fmt: skip
    return calls


@pytest.mark.skipif(
    os.environ.get(cs.engine.NATIVE_ENV, "") != "", reason="the native loop is set by hand"
)
def test_the_native_loop_builds_where_a_compiler_is_present():
    st = cs.engine.native_status(LOOP)
    if HAS_COMPILER:
        assert st.available, st.reason
        assert st.library.exists() and st.compiler and "-O3" in st.flags
    else:
        assert not st.available and "compiler" in st.reason


@pytest.mark.parametrize("d", [1, 5, 16, 17, 130])  # one block, padded, exact, two, dynamic width
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_loop_equals_xla_step(loop, counted, d, dtype):
    prob = cs.least_squares(150, d, rng=d)
    P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
    with jax.enable_x64(dtype == np.float64):
        got = run(prob, P, "native", dtype=dtype)
        assert counted, "the native loop was not used"
        want = run(prob, P, "xla", dtype=dtype)
    assert got.error_average.dtype == dtype
    assert got.provenance["engine_backend"] == "native"
    assert want.provenance["engine_backend"] == "xla"
    assert_same(got, want, rtol=1e-10 if dtype == np.float64 else 2e-4)


@pytest.mark.parametrize(
    "case",
    ["shard", "per_strategy_schedule", "indices", "suffix_and_chunk", "active_projection"],
)
def test_native_loop_keeps_every_engine_option(loop, counted, case):
    prob = cs.least_squares(120, 7, rng=1)
    if case == "active_projection":
        prob = prob._replace(radius=0.05)
    P = np.stack([cs.uniform(prob.G, prob.c), cs.variance(prob.G, prob.c)])
    steps, kw = 300, {}
    if case == "shard":
        kw["shard"] = False
    if case == "suffix_and_chunk":
        kw.update(suffix_fraction=0.1, chunk=37)
    if case == "active_projection":
        kw["x0"] = np.full(7, 10.0)  # outside the ball: projected first
    if case == "per_strategy_schedule":
        table = np.stack([np.full(steps, 1e-3), np.linspace(3e-3, 1e-4, steps)])
        kw["step_size"] = lambda t: table[:, t - 1]
    if case == "indices":
        rng = np.random.default_rng(0)
        kw["key"] = np.stack([cs.sample(cs.alias_table(p), (3, steps), rng=rng) for p in P])
    with jax.enable_x64(True):
        got = run(prob, P, "native", steps=steps, **kw)
        assert counted
        want = run(prob, P, "xla", steps=steps, **kw)
    assert_same(got, want, rtol=1e-10)
    assert np.all(np.linalg.norm(got.final.x, axis=-1) <= prob.radius * (1 + 1e-12))


@pytest.mark.parametrize("dtype, eta", [(np.float32, 1e30), (np.float64, 1e200)])
@pytest.mark.parametrize("backend", ["native", "xla"])
def test_native_loop_reports_a_diverged_run(loop, dtype, eta, backend):
    prob = cs.least_squares(100, 4, rng=0)
    P = cs.uniform(prob.G, prob.c)
    with jax.enable_x64(dtype == np.float64), pytest.raises(ValueError, match="diverged"):
        cs.cost_aware_sgd(
            prob, P, steps=50, trials=2, step_size=eta, options=options(backend, dtype=dtype)
        )


def test_backend_native_needs_a_problem_with_a_native_loop():
    prob = cs.least_squares(50, 3, rng=0)
    P = cs.uniform(prob.G, prob.c)
    generic = cs.FiniteSum(
        prob.loss, prob.data, G=prob.G, c=prob.c, radius=prob.radius,
        x_star=prob.x_star, f_star=prob.f_star, grad=prob.grad,
    )  # fmt: skip
    with pytest.raises(ValueError, match="backend='native' needs a problem type with a native"):
        cs.cost_aware_sgd(generic, P, steps=10, step_size=1e-3, options=options("native"))
    res = cs.cost_aware_sgd(generic, P, steps=10, step_size=1e-3)  # auto: XLA's generic step
    assert res.provenance["engine_backend"] == "xla"


def test_a_problem_type_brings_its_own_native_loop(loop, counted):
    """The extension point: a FiniteSum naming least squares' GradientStep runs its native
    loop, with no identity check on its gradient."""
    prob = cs.least_squares(60, 3, rng=2)
    own = cs.FiniteSum(
        prob.loss, prob.data, G=prob.G, c=prob.c, radius=prob.radius, x_star=prob.x_star,
        f_star=prob.f_star, hessian=prob.hessian, gradient_step=cs.LeastSquares.gradient_step,
    )  # fmt: skip
    P = cs.optimal(prob.G, prob.c)
    got = cs.cost_aware_sgd(own, P, steps=100, step_size=1e-3, trials=2)
    assert counted and got.provenance["engine_backend"] == "native"
    want = cs.cost_aware_sgd(prob, P, steps=100, step_size=1e-3, trials=2)
    np.testing.assert_array_equal(got.final.x, want.final.x)
    with pytest.raises(TypeError, match=r"problem\.gradient_step must be a GradientStep"):
        cs.cost_aware_sgd(own._replace(gradient_step=len), P, steps=10, step_size=1e-3)


def test_native_loop_can_be_turned_off(monkeypatch, counted):
    monkeypatch.setenv(cs.engine.NATIVE_ENV, "0")
    st = cs.engine.native_status(LOOP)
    assert not st.available and cs.engine.NATIVE_ENV in st.reason
    prob = cs.least_squares(50, 3, rng=0)
    P = cs.uniform(prob.G, prob.c)
    with pytest.raises(RuntimeError, match="turned off by COSTSGD_NATIVE=0"):
        cs.cost_aware_sgd(prob, P, steps=10, step_size=1e-3, options=options("native"))
    res = cs.cost_aware_sgd(prob, P, steps=10, step_size=1e-3)  # XLA's step
    assert np.isfinite(res.error_average).all()
    assert res.provenance["engine_backend"] == "xla"
    assert counted == []


def test_native_loop_takes_a_philox_key_on_one_device(loop):
    prob = cs.least_squares(80, 4, rng=2)
    P = cs.optimal(prob.G, prob.c)
    key = jax.random.key(5, impl="philox4x32")
    with jax.enable_x64(True):
        runs = [
            cs.cost_aware_sgd(
                prob,
                P,
                steps=200,
                trials=4,
                step_size=1e-3,
                key=key,
                options=options(backend, shard=False),
            )
            for backend in ("native", "xla")
        ]
    assert runs[0].error_average.dtype == np.float64
    assert_same(*runs, rtol=1e-10)


# --- direct calls of the loop ---------------------------------------------------------------


def _call(loop_status, *args):
    return LOOP.call(loop_status.target, *args)


def test_trials_with_their_own_bounds_equal_the_step(loop):
    """Per-trial bounds and offsets (the loop steps such trials one at a time) and a
    batch of 6 (a partial lockstep group), against a loop of least_squares_step."""
    import jax.numpy as jnp

    from costsgd.problems import least_squares_step

    rng = np.random.default_rng(0)
    n, d, L, T, B = 40, 9, 30, 40, 6
    a = rng.normal(size=(n, d))
    b, c, weight = rng.normal(size=n), rng.uniform(1, 5, n), rng.uniform(0.5, 2, n)
    a_norm2 = (a * a).sum(1)
    x0 = rng.normal(size=(B, d)) * 0.1
    idx = rng.integers(0, n, (B, L)).astype(np.int32)
    eta = rng.uniform(0.01, 0.2, T)
    radius = 0.3  # active on some steps
    bounds = np.array([[1, L, 0], [11, 35, 10], [1, L, 0], [5, 5, 0], [13, 40, 12], [2, 29, 0]])
    arrays = LOOP.prepare((a, b, a_norm2))

    def native(x, i, bnd):
        return _call(loop, x, jnp.zeros_like(x), jnp.zeros((), x.dtype), i, eta, bnd, arrays,
                     weight, c, radius)  # fmt: skip

    def reference(m, bnd):
        x, avg, cost = jnp.asarray(x0[m]), jnp.zeros(d), 0.0
        lo, hi, off = bnd
        for t in range(lo, hi + 1):
            i = idx[m, t - 1 - off]
            avg = avg + (x - avg) * (1 / t)
            x = least_squares_step(x, (a[i], b[i], a_norm2[i]), eta[t - 1], weight[i], radius)
            cost += c[i]
        return x, avg, cost

    with jax.enable_x64(True):
        own = jax.jit(jax.vmap(native))(x0, idx, bounds)
        shared = jax.jit(jax.vmap(native, in_axes=(0, 0, None)))(x0, idx, bounds[0])
        for m in range(B):
            for got, bnd in ((own, bounds[m]), (shared, bounds[0])):
                want = reference(m, bnd)
                for g, w in zip(got, want, strict=True):
                    np.testing.assert_allclose(np.asarray(g)[m], np.asarray(w), rtol=1e-12)


def test_direct_calls_check_shapes_and_ranges(loop):
    import jax.numpy as jnp

    from costsgd.problems._least_squares_native import pad_rows

    rng = np.random.default_rng(1)
    n, d, L = 20, 3, 8
    a = rng.normal(size=(n, d)).astype(np.float32)
    rows, b = pad_rows(a), np.zeros(n, np.float32)
    ones, x = np.ones(n, np.float32), np.zeros(d, np.float32)

    def call(idx, bounds, rows=rows, x=x):
        return _call(loop, x, jnp.zeros_like(x), jnp.float32(0), idx,
                     np.full(L, 0.1, np.float32), bounds, (rows, b, (a * a).sum(1)), ones, ones,
                     jnp.float32(1))  # fmt: skip

    good = np.arange(L, dtype=np.int32)
    out = jax.jit(call)(good, np.array([1, L, 0]))
    assert float(out[2]) == L  # cost: L steps of c_i = 1
    with pytest.raises(ValueError, match=r"rows must be \(n, w\)"):
        call(good, np.array([1, L, 0]), rows=a)
    with pytest.raises(ValueError, match="x must be one trial's iterate"):
        call(good, np.array([1, L, 0]), x=np.zeros((2, d), np.float32))
    with pytest.raises(ValueError, match=r"bounds must have shape \(3,\)"):
        call(good, np.array([1, L]))
    with pytest.raises(ValueError, match="indices must be integers"):
        call(good * 1.0, np.array([1, L, 0]))
    for idx, bounds in (
        (good, [1, L + 1, 0]),  # past the step sizes and the indices
        (good, [0, 3, 0]),  # t starts at 1
        (good, [5, L, 5]),  # reads indices[-1]
        (np.full(L, n, np.int32), [1, L, 0]),  # index n is outside [0, n)
    ):
        with pytest.raises(Exception, match="bounds outside the step sizes or indices"):
            jax.block_until_ready(jax.jit(call)(idx, np.array(bounds)))


# --- the build and the cache, in fresh processes ---------------------------------------------


def python(code, tmp_path, env=None, timeout=300):
    """Run ``code`` in a fresh interpreter on this checkout; ``CompletedProcess``."""
    full = {k: v for k, v in os.environ.items() if k not in ("CXX", "PYTHONPATH", "XLA_FLAGS")}
    full.update(XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu", **(env or {}))
    prelude = f"import sys\nsys.path.insert(0, {ROOT!r})\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, env=full, timeout=timeout,
    )  # fmt: skip


RUN = """
import numpy as np, costsgd as cs
prob = cs.least_squares(50, 3, rng=0)
res = cs.cost_aware_sgd(prob, cs.uniform(prob.G, prob.c), steps=20, step_size=1e-3)
assert np.isfinite(res.error_average).all()
print("backend", res.provenance["engine_backend"])
"""


@pytest.fixture
def fake_cxx(tmp_path, loop):
    """A 'compiler' that copies the real library to its -o target (and logs each build):
    builds in a fresh cache folder cost nothing. ``SLOW`` seconds of sleep make races."""
    log = tmp_path / "builds.log"
    script = tmp_path / "bin" / "fakecxx"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "fakecxx 1.0"; exit 0; fi\n'
        'out=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = -o ] && out="$a"; prev="$a"; done\n'
        'sleep "${SLOW:-0}"\n'
        f'echo build >> "{log}"\n'
        f'cp "{loop.library}" "$out"\n'
    )
    script.chmod(0o755)
    return script, log


def _library(tmp_path):
    (lib,) = (tmp_path / "cache" / "costsgd" / "native").glob("*.so")
    return lib


def test_nothing_builds_at_import_or_at_test_collection(tmp_path, fake_cxx):
    script, log = fake_cxx
    code = """
    import subprocess, sys
    import costsgd
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "tests/test_sgd_native.py", "tests/test_sgd.py"],
                          capture_output=True, text=True, cwd=sys.path[0])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    print("collected")
    """
    done = python(code, tmp_path, env={"CXX": str(script), "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    assert "collected" in done.stdout
    assert not log.exists(), "the native loop was built at import or collection"


def test_the_first_build_says_so_once(tmp_path, fake_cxx):
    script, log = fake_cxx
    done = python(RUN + RUN, tmp_path, env={"CXX": str(script)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split().count("native") == 2
    notices = [ln for ln in done.stderr.splitlines() if ln.startswith("costsgd: building")]
    assert len(notices) == 1 and "fakecxx" in notices[0], done.stderr
    assert log.read_text().count("build") == 1


def test_two_processes_build_once(tmp_path, fake_cxx):
    """The build lock holds across processes: the second waits and loads the first's library."""
    script, log = fake_cxx
    env = {**os.environ, "CXX": str(script), "SLOW": "3", "PYTHONPATH": ""}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    code = f"import sys\nsys.path.insert(0, {ROOT!r})\n{RUN}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all("backend native" in out for out, _ in outs)
    assert log.read_text().count("build") == 1


@pytest.mark.parametrize("damage", ["truncated", "foreign", "no_checksum", "empty"])
def test_a_damaged_library_is_rebuilt_in_the_same_process(tmp_path, fake_cxx, damage):
    """A truncated library used to kill every later process with SIGBUS; a foreign one stayed
    unusable for the process. Now each fails its check, is rebuilt with a notice, and runs."""
    script, log = fake_cxx
    env = {"CXX": str(script)}
    assert python(RUN, tmp_path, env=env).returncode == 0
    lib = _library(tmp_path)
    if damage == "truncated":
        with open(lib, "r+b") as fh:
            fh.truncate(lib.stat().st_size // 3)
    elif damage == "foreign":
        shutil.copy(sys.executable, lib)  # a valid binary, not our library
    elif damage == "no_checksum":
        lib.with_name(lib.name + ".sha256").unlink()
    else:
        lib.write_bytes(b"")
    done = python(RUN, tmp_path, env=env)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "backend native" in done.stdout
    assert "fails its check" in done.stderr and "rebuilding it" in done.stderr
    assert log.read_text().count("build") == 2


def test_a_build_that_does_not_load_is_not_published(tmp_path):
    """A 'compiler' that writes garbage: the child-process check refuses it, nothing is cached,
    and the run falls back to XLA's step with a one-line notice."""
    script = tmp_path / "bin" / "junkcxx"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "junk 1.0"; exit 0; fi\n'
        'out=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = -o ] && out="$a"; prev="$a"; done\n'
        'head -c 5000 /dev/urandom > "$out"\n'
    )
    script.chmod(0o755)
    done = python(RUN, tmp_path, env={"CXX": str(script)})
    assert done.returncode == 0, done.stderr
    assert "backend xla" in done.stdout
    assert "does not load in a child process" in done.stderr
    assert not list((tmp_path / "cache").rglob("*.so"))


@pytest.mark.parametrize("cxx", ['g++ "', "'unbalanced", "no-such-compiler-xyz"])
def test_compiler_settings_that_cannot_be_used_mean_no_native_loop(tmp_path, cxx):
    code = (
        RUN
        + """
try:
    cs.cost_aware_sgd(prob, cs.uniform(prob.G, prob.c), steps=20, step_size=1e-3,
                      options=cs.EngineOptions(backend="native"))
except RuntimeError as err:
    print("refused:", err)
"""
    )
    done = python(code, tmp_path, env={"CXX": cxx})
    assert done.returncode == 0, done.stderr
    assert "backend xla" in done.stdout
    assert f"refused: the native step loop is unavailable: CXX={cxx!r}" in done.stdout
    lines = [ln for ln in done.stderr.splitlines() if "XLA's step" in ln]
    assert len(lines) == 1 and f"CXX={cxx!r}" in lines[0], done.stderr


def test_without_a_compiler_the_engine_says_it_runs_the_slower_step(tmp_path):
    done = python(RUN, tmp_path, env={"PATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "backend xla" in done.stdout
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("costsgd:")]
    assert "running XLA's step, slower than the native loop" in line
    assert "no C++ compiler found" in line


@pytest.mark.skipif(not (HAS_COMPILER and hasattr(os, "getuid")), reason="POSIX, a compiler")
def test_a_temporary_folder_others_can_write_is_refused(tmp_path):
    """With no usable cache folder the library goes to a private temporary folder; one
    that others can write to (and so replace the library in) is refused."""
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    shared = tmp_path / f"costsgd-native-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    code = """
    import costsgd as cs
    print(cs.engine.native_status(cs.LeastSquares.gradient_step.native).reason)
    """
    done = python(code, tmp_path, env={"TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"{shared} is not private to this user; set XDG_CACHE_HOME to a folder of yours"
    ), done.stdout
    assert list(shared.iterdir()) == []


def test_a_failed_build_is_reported_and_not_cached(tmp_path):
    fake = tmp_path / "bin" / "c++"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "fake 1.0"; exit 0; fi\n'
        "echo 'fake compiler: error: cannot build' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    code = """
    import costsgd as cs
    st = cs.engine.native_status(cs.LeastSquares.gradient_step.native)
    print(st.available, st.reason)
    """
    done = python(code, tmp_path, env={"CXX": str(fake)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False building _least_squares.cc with")
    assert "fake compiler: error: cannot build" in done.stdout
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_native_loop_type_is_a_hashable_extension_point():
    """A GradientStep with a NativeLoop is a static argument of the compiled program: equal
    and hashable across calls."""
    a = GradientStep(len, None, NativeLoop(LOOP.source, "X", len, len))
    b = GradientStep(len, None, NativeLoop(LOOP.source, "X", len, len))
    assert a == b and hash(a) == hash(b)
