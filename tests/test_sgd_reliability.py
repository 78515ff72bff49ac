"""Issue 26's engine cases: each bad input names its argument, and no run hangs or is wrong."""

import numpy as np
import pytest

import costsgd as cs


@pytest.fixture(scope="module")
def prob():
    return cs.least_squares(20, 3, rng=0)


@pytest.mark.parametrize("backend", ["native", "xla"])
@pytest.mark.parametrize(
    ("steps", "chunk", "checkpoints"),
    [
        (5, 250, [4]),  # the reproduction: the last checkpoint before steps
        (40, 10, [3, 9]),  # ends inside the first chunk, then whole chunks follow
        (40, 10, [5, 20]),  # ends at the end of a chunk
        (40, 10, [7, 40]),  # ends at steps, the end of the last chunk
        (45, 10, [12, 44]),  # ends inside the tail
    ],
)
def test_runs_whose_checkpoints_end_before_steps_finish(prob, steps, chunk, checkpoints, backend):
    """The issue's reproduction spun forever; schedules ending before, at and at the end of
    chunks take every step and record what a run checkpointed at every step records."""
    if backend == "native" and not cs.engine.native_status(prob.gradient_step.native).available:
        pytest.skip("the native loop cannot be built here; the XLA case runs")
    p = cs.uniform(prob.G, prob.c)
    options = cs.EngineOptions(chunk=chunk, backend=backend)
    kw = dict(steps=steps, trials=2, step_size=1e-3, key=1, options=options)
    full = cs.cost_aware_sgd(prob, p, checkpoints=list(range(1, steps + 1)), **kw)
    res = cs.cost_aware_sgd(prob, p, checkpoints=checkpoints, **kw)
    assert res.steps.tolist() == checkpoints
    at = np.asarray(checkpoints) - 1
    np.testing.assert_allclose(res.error_average, full.error_average[:, at], rtol=1e-6)
    np.testing.assert_allclose(res.cost, full.cost[:, at], rtol=1e-6)
    np.testing.assert_allclose(res.final.x, full.final.x, rtol=1e-6)  # every step was taken


@pytest.mark.parametrize("dtype", [np.uint64, np.uint8, np.int16, np.int64])
def test_checkpoints_of_any_integer_dtype(prob, dtype):
    p = cs.uniform(prob.G, prob.c)
    kw = dict(steps=30, trials=2, step_size=1e-3, key=0)
    want = cs.cost_aware_sgd(prob, p, checkpoints=[3, 30], **kw)
    got = cs.cost_aware_sgd(prob, p, checkpoints=np.array([3, 30], dtype), **kw)
    np.testing.assert_array_equal(got.error_last, want.error_last)


@pytest.mark.parametrize(
    "checkpoints", [np.array([0, 3], np.uint64), np.array([5, 3], np.uint64), [2**64], [True]]
)
def test_bad_checkpoints_name_the_argument(prob, checkpoints):
    p = cs.uniform(prob.G, prob.c)
    with pytest.raises(ValueError, match="checkpoints"):
        cs.cost_aware_sgd(prob, p, steps=30, step_size=1e-3, checkpoints=checkpoints)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x0": "abc"}, TypeError, "x0"),
        ({"x0": ["a", "b", "c"]}, TypeError, "x0"),
        ({"options": cs.EngineOptions(dtype="foo")}, TypeError, "dtype"),
        ({"options": cs.EngineOptions(suffix_fraction="0.5")}, TypeError, "suffix_fraction"),
        ({"options": cs.EngineOptions(suffix_fraction=float("nan"))}, ValueError, "suffix_fr"),
        ({"key": 2**64}, ValueError, "key"),
        ({"key": -(2**63) - 1}, ValueError, "key"),
    ],
)
def test_bad_arguments_name_themselves(prob, kwargs, error, match):
    p = cs.uniform(prob.G, prob.c)
    with pytest.raises(error, match=match):
        cs.cost_aware_sgd(prob, p, steps=10, step_size=1e-3, **kwargs)


def test_an_x0_whose_norm_overflows_is_projected_not_zeroed(prob):
    """‖x0‖ = inf in float64: the start is x0's direction on the sphere of radius R."""
    p = cs.uniform(prob.G, prob.c)
    x0 = np.array([1e308, -1e308, 1e308])
    res = cs.cost_aware_sgd(prob, p, steps=1, step_size=0.0, x0=x0, checkpoints=[1])
    want = prob.radius * np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
    np.testing.assert_allclose(res.final.x[0], want, rtol=1e-6)


def test_inverse_time_schedule_refuses_an_infinite_step():
    with pytest.raises(ValueError, match="mu"):
        cs.inverse_time_schedule(1e-310)


def test_theory_step_size_refuses_a_p_that_misses_a_component():
    with pytest.raises(ValueError, match="p is zero on a component"):
        cs.theory_step_size([1.0, 0.0], [1.0, 2.0], D=1.0, steps=10)


def test_theory_step_size_is_finite_where_s_overflows():
    """S(p) = G^2 / p / n^2 overflows float64 here; the step D/sqrt(S T) does not."""
    G = np.array([1e200, 1e200])
    eta = cs.theory_step_size([0.5, 0.5], G, D=1.0, steps=100)
    np.testing.assert_allclose(eta, 1.0 / (1e200 * 10), rtol=1e-12)  # S(p) = 1e400
