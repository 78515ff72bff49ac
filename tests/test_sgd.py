"""The Cost-Aware SGD engine (Algorithm 1) against plain numpy, itself and the paper."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costsgd as cs
from costsgd.draw import sample_jax
from costsgd.problems import (
    GenericStep,
    least_squares_grad,
    least_squares_loss,
    least_squares_step,
    project,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, D, T, M = 200, 5, 300, 3
CHECKPOINTS = [1, 2, 7, 50, 151, 300]


@pytest.fixture(scope="module")
def prob():
    return cs.least_squares(N, D, rng=4)


def with_grad(prob, grad):
    """``prob`` as a generic :class:`FiniteSum` whose gradient is ``grad``."""
    return cs.FiniteSum(
        least_squares_loss,
        prob.data,
        G=prob.G,
        c=prob.c,
        radius=prob.radius,
        x_star=prob.x_star,
        f_star=prob.f_star,
        grad=grad,
        hessian=prob.hessian,
    )


@pytest.fixture(scope="module")
def strategies(prob):
    return np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])


def numpy_reference(prob, p, idx, eta, checkpoints, alpha):
    """Algorithm 1 written as a plain loop (float64), recording like the engine."""
    A, b, c = prob.A, prob.b, prob.c
    H = A.T @ A / len(b)
    err = lambda x: 0.5 * (x - prob.x_star) @ H @ (x - prob.x_star)  # noqa: E731
    x, iterates, cost, out = np.zeros(A.shape[1]), [], 0.0, []
    for t, i in enumerate(idx, start=1):
        iterates.append(x)
        g = (A[i] @ x - b[i]) * A[i] / (len(b) * p[i])
        x = x - eta[t - 1] * g
        x = x * min(1.0, prob.radius / np.linalg.norm(x))
        cost += c[i]
        if t in checkpoints:
            m = max(1, int(np.ceil(alpha * t - 1e-9)))
            avg, suffix = np.mean(iterates, axis=0), np.mean(iterates[t - m :], axis=0)
            out.append((cost, err(avg), err(suffix), err(x)))
    return np.array(out).T, x


def generic_grad(x, datum):
    """The least-squares gradient under another name: the engine's generic step path."""
    return least_squares_grad(x, datum)


@pytest.mark.parametrize("path", ["native_loop", "least_squares_step", "generic_step"])
@pytest.mark.parametrize("kind", ["constant", "inverse_time"])
def test_one_trial_equals_a_plain_numpy_loop_fed_the_same_indices(prob, strategies, kind, path):
    run_prob = prob
    if path == "generic_step":
        run_prob = with_grad(prob, generic_grad)
    if path == "native_loop":
        st = cs.engine.native_status(prob.gradient_step.native)
        if not st.available:
            pytest.skip(
                f"the native step loop cannot be built on this machine ({st.reason}); "
                "the engine runs XLA's step, tested by the other cases"
            )
    rng = np.random.default_rng(0)
    idx = np.stack([cs.sample(cs.alias_table(p), (M, T), rng=rng) for p in strategies])
    mu = float(np.linalg.eigvalsh(prob.hessian)[0])
    eta = (
        np.full(T, 2e-3)
        if kind == "constant"
        else cs.inverse_time_schedule(mu, offset=50)(np.arange(1, T + 1))
    )
    with jax.enable_x64(True):
        res = cs.cost_aware_sgd(
            run_prob,
            strategies,
            steps=T,
            trials=M,
            step_size=lambda t: eta[t - 1],
            key=idx,
            checkpoints=CHECKPOINTS,
            options=cs.EngineOptions(
                suffix_fraction=0.3,
                chunk=64,
                backend={"native_loop": "native", "least_squares_step": "xla"}.get(path, "auto"),
            ),
        )
    assert res.provenance["engine_backend"] == ("native" if path == "native_loop" else "xla")
    for s, p in enumerate(strategies):
        for m in range(M):
            ref, x_last = numpy_reference(prob, p, idx[s, m], eta, CHECKPOINTS, 0.3)
            got = [res.cost, res.error_average, res.error_suffix, res.error_last]
            for row, name in enumerate(("cost", "average", "suffix", "last")):
                np.testing.assert_allclose(got[row][s, m], ref[row], rtol=1e-9, err_msg=name)
            np.testing.assert_allclose(res.final.x[s, m], x_last, rtol=1e-10, atol=1e-13)
    assert res.steps.tolist() == CHECKPOINTS


def test_the_generic_steps_estimator_is_unbiased(prob):
    """Unconstrained, with step size 1, the generic step moves x by the estimator of
    Algorithm 1, line 6: grad f_i(x) / (n p_i); over i ~ p its mean is grad f(x) (§4.1)."""
    p = np.asarray(cs.optimal(prob.G, prob.c))
    table = cs.alias_table(p)
    x = np.linspace(-0.5, 0.5, D)
    draws = 400_000
    with jax.enable_x64(True):
        idx = sample_jax(jax.random.key(7), table, (draws,))
        A, b, w = jnp.asarray(prob.A), jnp.asarray(prob.b), jnp.asarray(1.0 / (N * p))
        step = GenericStep(least_squares_loss, least_squares_grad)
        xj = jnp.asarray(x)
        g = jax.vmap(lambda i: xj - step(xj, (A[i], b[i]), 1.0, w[i], jnp.inf))(idx)
        g = np.asarray(g)
    full = prob.A.T @ (prob.A @ x - prob.b) / N
    z = (g.mean(axis=0) - full) / (g.std(axis=0) / np.sqrt(draws))
    assert np.all(np.abs(z) < 4.5), z  # every coordinate within 4.5 standard errors
    # and the estimate is not trivially close: the spread is real
    assert np.all(g.std(axis=0) > 0)


def test_jit_vmap_equals_a_python_loop_over_trials_and_strategies(prob, strategies):
    kw = dict(steps=T, step_size=np.array([1e-3, 2e-3]), checkpoints=CHECKPOINTS, key=11)
    batched = cs.cost_aware_sgd(prob, strategies, trials=M, **kw)
    # strategy by strategy (trial m always uses key m: common random numbers)
    for s in range(2):
        alone = cs.cost_aware_sgd(
            prob, strategies[s], trials=M, **{**kw, "step_size": kw["step_size"][s]}
        )
        np.testing.assert_allclose(alone.error_last, batched.error_last[s], rtol=1e-5)
        np.testing.assert_allclose(alone.cost, batched.cost[s], rtol=1e-6)
    # trial by trial, with pre-drawn indices
    idx = cs.sample(cs.alias_table(strategies[1]), (M, T), rng=3)
    kw.pop("key")
    together = cs.cost_aware_sgd(
        prob, strategies[1], trials=M, key=idx, **{**kw, "step_size": 1e-3}
    )
    for m in range(M):
        one = cs.cost_aware_sgd(
            prob, strategies[1], trials=1, key=idx[m : m + 1], **{**kw, "step_size": 1e-3}
        )
        np.testing.assert_allclose(one.error_average[0], together.error_average[m], rtol=1e-5)


def test_results_do_not_depend_on_the_chunk_size(prob, strategies):
    idx = cs.sample(cs.alias_table(strategies[0]), (M, T), rng=5)
    runs = [
        cs.cost_aware_sgd(
            prob,
            strategies[0],
            steps=T,
            trials=M,
            step_size=1e-3,
            key=idx,
            checkpoints=CHECKPOINTS,
            options=cs.EngineOptions(chunk=chunk),
        )
        for chunk in (7, 250)  # 250: the default, a full chunk then a tail of 50
    ]
    np.testing.assert_allclose(runs[0].error_suffix, runs[1].error_suffix, rtol=1e-5)


def test_second_call_does_not_recompile(prob, strategies):
    """New p, step sizes, schedules, checkpoints and keys reuse the compiled program:
    the problem's gradient is traced once (a Python side effect counts the traces)."""
    traces = []

    def counted_grad(x, datum):
        traces.append(1)
        return least_squares_grad(x, datum)

    counted = with_grad(prob, counted_grad)
    kw = dict(steps=T, trials=M, checkpoints=CHECKPOINTS)
    cs.cost_aware_sgd(counted, strategies, step_size=1e-3, key=0, **kw)
    first = len(traces)
    assert first > 0
    other_p = np.stack([cs.variance(prob.G, prob.c), cs.smooth(strategies[1], 0.3)])
    cs.cost_aware_sgd(counted, other_p, step_size=[2e-3, 5e-4], key=jax.random.key(1), **kw)
    cs.cost_aware_sgd(
        counted,
        strategies,
        step_size=lambda t: np.full(t.shape, 1e-3),
        key=2,
        **{**kw, "checkpoints": [3, 4, 5, 6, 100, 300]},
    )
    assert len(traces) == first
    cs.cost_aware_sgd(counted, strategies, step_size=1e-3, **{**kw, "trials": M + 1})
    assert len(traces) > first  # a new shape does trace again: the counter can fail


def test_int_key_equals_the_jax_key_it_seeds(prob, strategies):
    kw = dict(steps=T, trials=M, step_size=1e-3, checkpoints=CHECKPOINTS)
    a = cs.cost_aware_sgd(prob, strategies, key=5, **kw)
    b = cs.cost_aware_sgd(prob, strategies, key=jax.random.key(5), **kw)
    c = cs.cost_aware_sgd(prob, strategies, key=jax.random.PRNGKey(5), **kw)
    d = cs.cost_aware_sgd(prob, strategies, key=6, **kw)
    np.testing.assert_array_equal(a.error_last, b.error_last)
    np.testing.assert_array_equal(a.error_last, c.error_last)
    assert not np.array_equal(a.error_last, d.error_last)
    with pytest.raises(TypeError, match="key"):
        cs.cost_aware_sgd(prob, strategies, key="seed", **kw)


@pytest.mark.parametrize("seed", [2**31 + 5, 2**32 - 1, 2**32 + 7])
def test_large_int_seeds_equal_the_jax_key_they_seed(prob, strategies, seed):
    """Seeds below 2**32 become threefry key data on the host; larger ones go
    through jax.random.key. Both must be the key JAX makes from the seed."""
    kw = dict(steps=T, trials=M, step_size=1e-3, checkpoints=CHECKPOINTS)
    a = cs.cost_aware_sgd(prob, strategies, key=seed, **kw)
    b = cs.cost_aware_sgd(prob, strategies, key=jax.random.key(seed), **kw)
    c = cs.cost_aware_sgd(prob, strategies, key=jax.random.key_data(jax.random.key(seed)), **kw)
    np.testing.assert_array_equal(a.error_last, b.error_last)
    np.testing.assert_array_equal(a.error_last, c.error_last)


def test_float64_stays_float64_and_default_is_float32(prob, strategies):
    kw = dict(steps=T, trials=M, step_size=1e-3, checkpoints=CHECKPOINTS)  # float32: cached
    with jax.enable_x64(True):
        res64 = cs.cost_aware_sgd(prob, strategies, **kw)
    res32 = cs.cost_aware_sgd(prob, strategies, **kw)
    for a in (res64.error_average, res64.cost, res64.final.x):
        assert a.dtype == np.float64
    for a in (res32.error_average, res32.cost, res32.final.x):
        assert a.dtype == np.float32


@settings(max_examples=10, deadline=None)
@given(radius_factor=st.floats(1.0, 3.0), eta=st.floats(1e-4, 1.0))
def test_iterates_stay_in_the_feasible_ball(radius_factor, eta):
    prob = cs.least_squares(40, 3, radius_factor=radius_factor, rng=0)
    p = cs.uniform(prob.G, prob.c)
    res = cs.cost_aware_sgd(prob, p, steps=30, trials=2, step_size=eta, checkpoints=[30])
    assert np.all(np.linalg.norm(res.final.x, axis=-1) <= prob.radius * (1 + 1e-5))
    assert np.all(np.isfinite(res.error_last))


@settings(max_examples=25, deadline=None)
@given(
    x=st.lists(st.floats(-100, 100, allow_subnormal=False), min_size=3, max_size=3),
    radius=st.floats(0.1, 10),
)
def test_projection_is_onto_the_ball(x, radius):
    with jax.enable_x64(True):
        y = np.asarray(project(jnp.asarray(x, jnp.float64), radius))
    x = np.asarray(x)
    if np.linalg.norm(x) <= radius:
        np.testing.assert_allclose(y, x)
    else:
        assert np.linalg.norm(y) == pytest.approx(radius)
        assert np.linalg.norm(y / radius - x / np.linalg.norm(x)) < 1e-9  # same direction


@settings(max_examples=25, deadline=None)
@given(
    x=st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=3, max_size=3),
    a=st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=3, max_size=3),
    b=st.floats(-3, 3),
    eta=st.floats(1e-3, 10),
    radius=st.floats(0.1, 10),
)
def test_least_squares_step_equals_the_generic_step(x, a, b, eta, radius):
    """The identity ‖x - s a‖² = ‖x‖² - 2s aᵀx + s²‖a‖² gives the same projected step, inside and
    outside the ball."""
    with jax.enable_x64(True):
        x, a = jnp.asarray(x, jnp.float64), jnp.asarray(a, jnp.float64)
        generic = GenericStep(least_squares_loss, least_squares_grad)
        want = generic(x, (a, b), eta, 0.7, radius)
        got = least_squares_step(x, (a, b, a @ a), eta, 0.7, radius)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_theory_step_size_and_schedules():
    G = np.array([1.0, 2.0, 3.0])
    p = np.stack([cs.uniform(G, G), cs.variance(G, G)])
    eta = cs.theory_step_size(p, G, D=2.0, steps=100)
    expected = [2.0 / np.sqrt(cs.second_moment(q, G) * 100) for q in p]
    np.testing.assert_allclose(eta, expected)
    assert eta[1] > eta[0]  # Variance minimises S(p): the largest step
    assert cs.log_checkpoints(20000, 50)[[0, -1]].tolist() == [1, 20000]


def test_sharded_run_equals_single_device_run(tmp_path):
    code = textwrap.dedent(
        """
        import jax, numpy as np, costsgd as cs
        assert jax.device_count() == 2, jax.devices()
        prob = cs.least_squares(200, 5, rng=4)
        P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
        kw = dict(steps=300, trials=5, step_size=1e-3, checkpoints=[1, 30, 300])
        one = cs.cost_aware_sgd(prob, P, key=3, options=cs.EngineOptions(shard=False), **kw)
        two = cs.cost_aware_sgd(prob, P, key=3, options=cs.EngineOptions(shard=True), **kw)
        for a, b in zip(one[:-1], two[:-1]):  # every field but the provenance
            if isinstance(a, tuple):
                for u, v in zip(a, b):
                    np.testing.assert_allclose(u, v, rtol=1e-6)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-6)
        assert two.error_average.shape == (2, 5, 3)
        idx = cs.sample(cs.alias_table(P[0]), (2, 5, 300), rng=1)
        a = cs.cost_aware_sgd(prob, P, key=idx, options=cs.EngineOptions(shard=False), **kw)
        b = cs.cost_aware_sgd(prob, P, key=idx, options=cs.EngineOptions(shard=True), **kw)
        np.testing.assert_allclose(a.error_last, b.error_last, rtol=1e-6)
        print("sharded ok")
        """
    )
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "sharded ok" in out.stdout


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p": np.ones((2, 2, 2)) / 2}, "p must have shape"),
        ({"p": np.full(N, 2.0 / N)}, "p must sum to 1"),
        ({"p": np.r_[0.0, np.full(N - 1, 1.0 / (N - 1))]}, "zero on a component"),
        ({"p": np.full(N + 1, 1.0 / (N + 1))}, "components"),
        ({"steps": 0}, "steps"),
        ({"trials": 2.5}, "trials"),
        ({"step_size": None}, "step_size is required"),
        ({"step_size": "abc"}, "step_size must be a number"),
        ({"step_size": -1.0}, "step_size must be finite"),
        ({"step_size": [1.0, 2.0]}, "one entry per strategy"),
        ({"step_size": lambda t: np.ones(T - 1)}, r"step_size\(t\) for t = 1..300 must have"),
        ({"checkpoints": [5, 3]}, "increase strictly"),
        ({"checkpoints": [0, 3]}, "increase strictly"),
        ({"checkpoints": [1.5]}, "checkpoints must be"),
        ({"checkpoints": [T + 1]}, "increase strictly"),
        ({"options": cs.EngineOptions(suffix_fraction=0.0)}, "options.suffix_fraction"),
        ({"options": cs.EngineOptions(backend="gpu")}, "options.backend"),
        ({"options": cs.EngineOptions(chunk=0)}, "options.chunk"),
        ({"options": {"chunk": 5}}, "options must be an EngineOptions"),
        ({"x0": np.zeros(D + 1)}, "x0"),
        ({"x0": np.full(D, np.nan)}, "x0"),
        ({"key": np.full((M, T), N)}, r"indices \(key\) must lie"),
        ({"key": np.zeros((M, T + 1), int)}, "key as pre-drawn indices must be ints"),
        ({"options": cs.EngineOptions(dtype=jnp.int32)}, "dtype"),
        ({"options": cs.EngineOptions(dtype=jnp.float16)}, "float32 or float64"),
        ({"options": cs.EngineOptions(dtype=jnp.bfloat16)}, "float32 or float64"),
        ({"step_size": 1e39}, "overflows the run's float32"),
        ({"step_size": lambda t: np.r_[np.ones(T - 1), 1e39]}, "step_size = 1e"),
        ({"key": jnp.zeros(3, jnp.uint32)}, "key"),
    ],
)
def test_bad_input_raises_a_clear_error(prob, kwargs, match):
    args = {"p": cs.uniform(prob.G, prob.c), "steps": T, "trials": M, "step_size": 1e-3, **kwargs}
    p = args.pop("p")
    with pytest.raises((ValueError, TypeError), match=match):
        cs.cost_aware_sgd(prob, p, **args)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("A", np.nan, "problem.data must be finite"),
        ("b", np.inf, "problem.data must be finite"),
        ("x_star", np.nan, "problem.x_star must be finite"),
        ("f_star", np.inf, "problem.f_star must be finite"),
        ("c", -1.0, "problem.c must be non-negative"),
        ("c", np.inf, "problem.c must be finite"),
        ("G", np.nan, "problem.G must be finite"),
    ],
)
def test_non_finite_problem_values_are_refused_by_name(prob, field, value, match):
    if field == "f_star":
        bad = prob._replace(f_star=value)
    else:
        arr = np.array(getattr(prob, field), dtype=np.float64)
        arr.flat[1] = value
        bad = prob._replace(**{field: arr})
    with pytest.raises(ValueError, match=match):
        cs.cost_aware_sgd(bad, np.full(N, 1.0 / N), steps=T, trials=M, step_size=1e-3)


@pytest.mark.parametrize("as_schedule", [False, True])
def test_a_run_that_overflows_is_reported_with_its_step_size(prob, strategies, as_schedule):
    """In float32, a step of 1e30 makes ||x||^2 overflow: the run fails loudly, naming the
    step, instead of returning inf or a silently wrong projection."""
    sizes = [1e-3, 1e30]
    if as_schedule:
        sizes = lambda t: np.stack([np.full(t.shape, 1e-3), np.full(t.shape, 1e30)])  # noqa: E731
    with pytest.raises(ValueError, match=r"diverged for strategy p\[1\].*step_size"):
        cs.cost_aware_sgd(
            prob, strategies, steps=T, trials=M, checkpoints=CHECKPOINTS, step_size=sizes
        )


def test_bad_schedule_helpers_raise():
    with pytest.raises(ValueError, match="mu"):
        cs.inverse_time_schedule(0.0)
    with pytest.raises(ValueError, match="D"):
        cs.theory_step_size([1.0], [1.0], D=-1.0, steps=10)
    with pytest.raises(ValueError, match="steps"):
        cs.log_checkpoints(0)


def test_inverse_time_steps_give_the_strongly_convex_rate(prob, strategies):
    """Eq. 4's regime: eta_t = 1/(mu t) with suffix averaging has error O(1/T)
    (Rakhlin et al., 2011): 4x the steps cut the error about 4x, clearly more than
    the 2x of the convex O(1/sqrt(T)) rate."""
    mu = float(np.linalg.eigvalsh(prob.hessian)[0])
    steps = 8000
    res = cs.cost_aware_sgd(
        prob,
        strategies,
        steps=steps,
        trials=64,
        step_size=cs.inverse_time_schedule(mu),
        checkpoints=[steps // 4, steps],
        key=4,
    )
    mean = res.error_suffix.mean(axis=1)  # (S, 2)
    ratio = mean[:, 0] / mean[:, 1]
    assert np.all((ratio > 2.8) & (ratio < 6.5)), ratio


def test_accelerator_loop_structure_equals_the_cpu_one(prob, strategies):
    """The per-step scan (GPUs) and the event-segmented loops (CPUs) take the same steps."""
    from functools import partial

    from costsgd.engine._arrays import engine_arrays
    from costsgd.engine._schedules import event_schedule
    from costsgd.engine._trial import TrialInputs, run_trial

    p = strategies[1]
    step = prob.gradient_step
    runs = []
    with jax.enable_x64(True):
        arrays = engine_arrays(prob, p[None], prob.x_star, np.float64, step, native=False)
        idx = cs.sample(cs.alias_table(p), T, rng=2).astype(np.int32)
        inputs = TrialInputs(
            arrays.weight[0], arrays.threshold[0], arrays.alias[0], np.full(T, 2e-3), idx,
            np.zeros(D),
        )  # fmt: skip
        events = event_schedule(T, CHECKPOINTS, 0.3)
        for segmented in (True, False):
            kernel = partial(
                run_trial,
                loss=least_squares_loss,
                step=step,
                target=None,
                chunk=64,
                predrawn=True,
                segmented=segmented,
            )
            state, rec = jax.jit(kernel)(arrays, inputs, events)
            runs.append((np.asarray(state.x), np.asarray(rec.error_suffix), np.asarray(rec.cost)))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert np.all(runs[0][1] > 0)
