"""The native step loop (costsgd/engine/_native.py) against XLA's step, and its fallbacks."""

import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import costsgd as cs
from costsgd.engine import _kernel as sgd_kernel
from costsgd.engine import _native as sgd_native
from costsgd.engine import _trial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_COMPILER = any(shutil.which(c) for c in ("c++", "g++", "clang++"))
needs_native = pytest.mark.skipif(
    not sgd_native.status().available,
    reason=f"the native step loop cannot be built on this machine ({sgd_native.status().reason})",
)


@pytest.mark.skipif(
    os.environ.get(sgd_native.NATIVE_ENV, "") != "", reason="the native loop is set by hand"
)
def test_the_native_loop_builds_where_a_compiler_is_present():
    st = sgd_native.status()
    if HAS_COMPILER:
        assert st.available, st.reason
        assert st.library.exists()
    else:
        assert not st.available and "compiler" in st.reason


def run(prob, P, native, trials=3, steps=400, **kw):
    kw.setdefault("step_size", np.full(len(P), 2e-3))
    return cs.cost_aware_sgd(
        prob,
        P,
        steps=steps,
        trials=trials,
        key=3,
        checkpoints=[1, 5, 77, steps],
        native=native,
        **kw,
    )


def assert_same(a, b, rtol):
    for name in ("cost", "error_average", "error_suffix", "error_last"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, err_msg=name)
    for name in ("x", "average"):
        got, want = getattr(a.final, name), getattr(b.final, name)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    np.testing.assert_allclose(a.final.cost, b.final.cost, rtol=rtol)


def count_native_traces(monkeypatch):
    """Count the traces that go through the native loop (a fresh trace per test)."""
    jax.clear_caches()
    calls = []
    real = _trial.linear_sgd_steps

    def counted(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(_trial, "linear_sgd_steps", counted)
    return calls


@needs_native
@pytest.mark.parametrize("d", [1, 5, 16, 17, 130])  # one block, padded, exact, two, dynamic width
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_loop_equals_xla_step(monkeypatch, d, dtype):
    prob = cs.least_squares(150, d, rng=d)
    P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
    calls = count_native_traces(monkeypatch)
    with jax.enable_x64(dtype == np.float64):
        got = run(prob, P, True, dtype=dtype)
        assert calls, "the native loop was not used"
        want = run(prob, P, False, dtype=dtype)
    assert got.error_average.dtype == dtype
    assert_same(got, want, rtol=1e-10 if dtype == np.float64 else 2e-4)


@needs_native
@pytest.mark.parametrize(
    "options",
    [
        {"shard": False},
        {"schedule": "per_strategy"},
        {"indices": True},
        {"suffix_fraction": 0.1, "chunk": 37},
        {"radius": 0.05, "x0": True},  # the projection is active on most steps
    ],
    ids=lambda o: ",".join(o),
)
def test_native_loop_keeps_every_engine_option(monkeypatch, options):
    options = dict(options)
    prob = cs.least_squares(120, 7, rng=1)
    if "radius" in options:
        prob = prob._replace(radius=options.pop("radius"))
    P = np.stack([cs.uniform(prob.G, prob.c), cs.variance(prob.G, prob.c)])
    steps = 300
    if options.pop("x0", False):
        options["x0"] = np.full(7, 10.0)  # outside the ball: projected first
    if options.pop("schedule", None):
        options["schedule"] = np.stack([np.full(steps, 1e-3), np.linspace(3e-3, 1e-4, steps)])
        options["step_size"] = None
    if options.pop("indices", False):
        rng = np.random.default_rng(0)
        options["indices"] = np.stack(
            [cs.sample(cs.alias_table(p), (3, steps), rng=rng) for p in P]
        )
    calls = count_native_traces(monkeypatch)
    with jax.enable_x64(True):
        got = run(prob, P, True, steps=steps, **options)
        assert calls
        want = run(prob, P, False, steps=steps, **options)
    assert_same(got, want, rtol=1e-10)
    assert np.all(np.linalg.norm(got.final.x, axis=-1) <= prob.radius * (1 + 1e-12))


@needs_native
@pytest.mark.parametrize("dtype, eta", [(np.float32, 1e30), (np.float64, 1e200)])
@pytest.mark.parametrize("native", [True, False])
def test_native_loop_reports_a_diverged_run(dtype, eta, native):
    prob = cs.least_squares(100, 4, rng=0)
    P = cs.uniform(prob.G, prob.c)
    with jax.enable_x64(dtype == np.float64), pytest.raises(ValueError, match="diverged"):
        cs.cost_aware_sgd(prob, P, steps=50, trials=2, step_size=eta, native=native, dtype=dtype)


def test_native_argument_is_checked():
    prob = cs.least_squares(50, 3, rng=0)
    P = cs.uniform(prob.G, prob.c)
    with pytest.raises(ValueError, match="native must be True, False or None"):
        cs.cost_aware_sgd(prob, P, steps=10, step_size=1e-3, native="yes")
    generic = cs.FiniteSum(
        prob.loss, prob.data, G=prob.G, c=prob.c, radius=prob.radius,
        x_star=prob.x_star, f_star=prob.f_star, grad=lambda x, d: prob.grad(x, d),
    )  # fmt: skip
    with pytest.raises(ValueError, match="native=True needs least-squares components"):
        cs.cost_aware_sgd(generic, P, steps=10, step_size=1e-3, native=True)


def test_native_loop_can_be_turned_off(monkeypatch):
    calls = count_native_traces(monkeypatch)
    monkeypatch.setenv(sgd_native.NATIVE_ENV, "0")
    st = sgd_native.status()
    assert not st.available and sgd_native.NATIVE_ENV in st.reason
    prob = cs.least_squares(50, 3, rng=0)
    P = cs.uniform(prob.G, prob.c)
    with pytest.raises(RuntimeError, match="turned off by COSTSGD_NATIVE=0"):
        cs.cost_aware_sgd(prob, P, steps=10, step_size=1e-3, native=True)
    res = cs.cost_aware_sgd(prob, P, steps=10, step_size=1e-3)  # XLA's step
    assert np.isfinite(res.error_average).all()
    assert calls == []


def test_without_a_compiler_the_engine_falls_back(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
import numpy as np, costsgd as cs
from costsgd.engine import _native as sgd_native
st = sgd_native.status()
assert not st.available, st
print(st.reason)
prob = cs.least_squares(50, 3, rng=0)
P = cs.uniform(prob.G, prob.c)
res = cs.cost_aware_sgd(prob, P, steps=20, step_size=1e-3)
assert np.isfinite(res.error_average).all()
try:
    cs.cost_aware_sgd(prob, P, steps=20, step_size=1e-3, native=True)
except RuntimeError as err:
    print(err)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("CXX", "PYTHONPATH")}
    env.update(PATH=str(tmp_path), XDG_CACHE_HOME=str(tmp_path), JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("no C++ compiler found")
    assert lines[1].startswith("the native step loop is unavailable: no C++ compiler found")


@pytest.mark.skipif(not HAS_COMPILER, reason="no C++ compiler")
def test_a_failed_build_is_reported_and_not_cached(tmp_path):
    fake = tmp_path / "bin" / "c++"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'fake compiler: error: cannot build' >&2\nexit 1\n")
    fake.chmod(0o755)
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from costsgd.engine import _native as sgd_native
st = sgd_native.status()
print(st.available, st.reason)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CXX=str(fake), XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False building _native.cc with")
    assert "fake compiler: error: cannot build" in done.stdout
    assert not list((tmp_path / "cache").rglob("*.so"))


@needs_native
def test_trials_with_their_own_bounds_equal_linear_sgd_step():
    """Per-trial bounds and offsets (the loop steps such trials one at a time) and a
    batch of 6 (a partial lockstep group), against a loop of linear_sgd_step."""
    import jax.numpy as jnp

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

    def native(x, i, bnd):
        return sgd_native.linear_sgd_steps(
            x, jnp.zeros_like(x), jnp.zeros((), x.dtype), i, eta, bnd,
            sgd_native.pad_rows(a), b, a_norm2, weight, c, radius,
        )  # fmt: skip

    def reference(m, bnd):
        state = sgd_kernel.SGDState(jnp.asarray(x0[m]), jnp.zeros(d), jnp.zeros(()))
        lo, hi, off = bnd
        for t in range(lo, hi + 1):
            i = idx[m, t - 1 - off]
            state = sgd_kernel.linear_sgd_step(
                state, (a[i], b[i]), a_norm2[i], weight[i], c[i], eta[t - 1], float(t), radius
            )
        return state

    with jax.enable_x64(True):
        own = jax.jit(jax.vmap(native))(x0, idx, bounds)
        shared = jax.jit(jax.vmap(native, in_axes=(0, 0, None)))(x0, idx, bounds[0])
        for m in range(B):
            for got, bnd in ((own, bounds[m]), (shared, bounds[0])):
                want = reference(m, bnd)
                for g, w in zip(got, want, strict=True):
                    np.testing.assert_allclose(np.asarray(g)[m], np.asarray(w), rtol=1e-12)


@needs_native
def test_direct_calls_check_shapes_and_ranges():
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    n, d, L = 20, 3, 8
    a = rng.normal(size=(n, d)).astype(np.float32)
    rows, b = sgd_native.pad_rows(a), np.zeros(n, np.float32)
    ones, x = np.ones(n, np.float32), np.zeros(d, np.float32)

    def call(idx, bounds, rows=rows, x=x):
        return sgd_native.linear_sgd_steps(
            x, jnp.zeros_like(x), jnp.float32(0), idx, np.full(L, 0.1, np.float32), bounds,
            rows, b, (a * a).sum(1), ones, ones, jnp.float32(1),
        )  # fmt: skip

    good = np.arange(L, dtype=np.int32)
    out = jax.jit(call)(good, np.array([1, L, 0]))
    assert float(out[2]) == L  # cost: L steps of c_i = 1
    with pytest.raises(ValueError, match=r"rows must be \(n, w\)"):
        call(good, np.array([1, L, 0]), rows=a)
    with pytest.raises(ValueError, match="x must be one trial's iterate"):
        call(good, np.array([1, L, 0]), x=np.zeros((2, d), np.float32))
    with pytest.raises(ValueError, match=r"bounds must have shape \(3,\)"):
        call(good, np.array([1, L]))
    for idx, bounds in (
        (good, [1, L + 1, 0]),  # past the step sizes and the indices
        (good, [0, 3, 0]),  # t starts at 1
        (good, [5, L, 5]),  # reads indices[-1]
        (np.full(L, n, np.int32), [1, L, 0]),  # index n is outside [0, n)
    ):
        with pytest.raises(Exception, match="bounds outside the step sizes or indices"):
            jax.block_until_ready(jax.jit(call)(idx, np.array(bounds)))


@needs_native
def test_native_loop_takes_a_philox_key_on_one_device():
    prob = cs.least_squares(80, 4, rng=2)
    P = cs.optimal(prob.G, prob.c)
    key = jax.random.key(5, impl="philox4x32")
    with jax.enable_x64(True):
        runs = [
            cs.cost_aware_sgd(
                prob, P, steps=200, trials=4, step_size=1e-3, key=key, shard=False, native=native
            )
            for native in (True, False)
        ]
    assert runs[0].error_average.dtype == np.float64
    assert_same(*runs, rtol=1e-10)


@needs_native
def test_eager_calls_take_the_dtype_of_x():
    """numpy float64 inputs with x64 off: every float follows x (float32), no mixed buffers."""
    rng = np.random.default_rng(3)
    n, d, L = 6, 3, 4
    a = rng.normal(size=(n, d))
    args = (np.arange(L, dtype=np.int32), np.full(L, 0.1), np.array([1, L, 0]),
            sgd_native.pad_rows(a), rng.normal(size=n), (a * a).sum(1), np.ones(n), np.ones(n),
            np.asarray(1.0))  # fmt: skip
    x, avg = np.ones(d), np.full(d, 0.5)
    got = sgd_native.linear_sgd_steps(x, avg, 0.0, *args)
    with jax.enable_x64(True):
        want = sgd_native.linear_sgd_steps(x, avg, 0.0, *args)
    assert all(g.dtype == np.float32 for g in got)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5)
    with pytest.raises(ValueError, match="indices must be integers"):
        sgd_native.linear_sgd_steps(x, avg, 0.0, args[0] * 1.0, *args[1:])


@pytest.mark.skipif(not (HAS_COMPILER and hasattr(os, "getuid")), reason="POSIX, a compiler")
def test_a_temporary_folder_others_can_write_is_refused(tmp_path):
    """With no usable cache folder the library goes to a private temporary folder; one
    that others can write to (and so replace the library in) is refused."""
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    shared = tmp_path / f"costsgd-native-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from costsgd.engine import _native as sgd_native
print(sgd_native.status().reason)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(XDG_CACHE_HOME=str(not_a_folder), TMPDIR=str(tmp_path), JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"{shared} is not private to this user; set XDG_CACHE_HOME to a folder of yours"
    ), done.stdout
    assert list(shared.iterdir()) == []
