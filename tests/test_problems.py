"""Finite-sum problems: the §4.4 generator's stated properties and the user interface."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costsgd as cs
from costsgd.problems import least_squares_grad, least_squares_loss


@pytest.fixture(scope="module")
def paper():
    return cs.least_squares()


def test_paper_instance_matches_section_4_4(paper):
    norms = np.linalg.norm(paper.A, axis=1)
    assert paper.A.shape == (3000, 50)
    assert norms.max() <= 10.0 and norms.min() >= 1.0 - 1e-12  # L = 10, min_norm_frac = 0.1
    assert norms.max() / norms.min() > 5  # heterogeneous
    assert paper.c.min() >= 1.0 and paper.c.max() <= 1000.0
    assert paper.G.shape == paper.c.shape == (3000,)
    # x* minimises f and is interior to the ball (radius_factor = 2)
    assert np.linalg.norm(paper.x_star) <= paper.radius / 2 + 1e-12
    full_grad = paper.A.T @ (paper.A @ paper.x_star - paper.b) / 3000
    assert np.linalg.norm(full_grad) < 1e-10
    assert paper.f_star == pytest.approx(0.5 * np.mean((paper.A @ paper.x_star - paper.b) ** 2))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), bound=st.sampled_from(["ball", "row_norm"]))
def test_gradient_bounds_hold_on_the_ball(seed, bound):
    prob = cs.least_squares(200, 6, gradient_bound=bound, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 6))
    x *= (prob.radius * rng.uniform(0, 1, 64) ** (1 / 6) / np.linalg.norm(x, axis=1))[:, None]
    grad_norms = np.abs(x @ prob.A.T - prob.b) * np.linalg.norm(prob.A, axis=1)  # (64, n)
    assert np.all(grad_norms <= prob.G * (1 + 1e-12))


def test_ball_bound_is_attained():
    prob = cs.least_squares(50, 4, rng=3)
    norms = np.linalg.norm(prob.A, axis=1)
    x = -np.sign(prob.b)[:, None] * prob.radius * prob.A / norms[:, None]  # one point per row
    attained = np.abs(np.sum(prob.A * x, axis=1) - prob.b) * norms
    np.testing.assert_allclose(attained, prob.G, rtol=1e-12)


def test_row_norm_bound_is_proportional_to_row_norms():
    prob = cs.least_squares(100, 5, gradient_bound="row_norm", rng=1)
    ratio = prob.G / np.linalg.norm(prob.A, axis=1)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)


def test_least_squares_interface_objective_and_hessian():
    prob = cs.least_squares(300, 5, rng=2)
    x = np.linspace(-0.3, 0.3, 5)
    with jax.enable_x64(True):
        f = float(cs.objective(prob, x))
        gap = float(cs.suboptimality(prob, x))
    assert f == pytest.approx(0.5 * np.mean((prob.A @ x - prob.b) ** 2), rel=1e-12)
    assert gap == pytest.approx(f - prob.f_star, rel=1e-9)
    np.testing.assert_allclose(prob.hessian, prob.A.T @ prob.A / 300)
    a, b = prob.data
    np.testing.assert_allclose(least_squares_grad(x, (a[7], b[7])), (a[7] @ x - b[7]) * a[7])


def _logistic_loss(x, datum):
    a, y = datum
    return jnp.logaddexp(0.0, -y * (a @ x))


def test_user_defined_problem_uses_autodiff_and_runs_in_the_engine():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((100, 3))
    y = np.sign(rng.standard_normal(100))
    G = np.linalg.norm(A, axis=1)  # |d/dz log(1+e^{-z})| <= 1
    prob = cs.FiniteSum(
        _logistic_loss, (A, y), G=G, c=np.ones(100), radius=1.0, x_star=np.zeros(3), f_star=0.0
    )
    assert prob.grad is None and prob.hessian is None
    x = np.array([0.1, -0.2, 0.3])
    with jax.enable_x64(True):
        f = float(cs.objective(prob, x))
        gap = float(cs.suboptimality(prob, x))
    assert f == pytest.approx(np.mean(np.logaddexp(0, -y * (A @ x))), rel=1e-12)
    assert gap == pytest.approx(f)  # f_star = 0 here
    res = cs.cost_aware_sgd(prob, cs.variance(G, prob.c), steps=50, trials=2, step_size=0.1)
    assert res.error_last.shape == (2, res.steps.size)
    assert np.all(np.linalg.norm(res.final.x, axis=-1) <= 1.0 + 1e-6)
    # only f* known: the dimension comes from x0, the errors are f(x) - f*
    no_min = prob._replace(x_star=None)
    with pytest.raises(ValueError, match="x0 is required"):
        cs.cost_aware_sgd(no_min, cs.variance(G, prob.c), steps=50, trials=2, step_size=0.1)
    same = cs.cost_aware_sgd(
        no_min, cs.variance(G, prob.c), steps=50, trials=2, step_size=0.1, x0=np.zeros(3)
    )
    np.testing.assert_allclose(same.error_last, res.error_last, rtol=1e-6)


def test_least_squares_component_functions_agree_with_jax_grad():
    a, b = np.array([1.0, -2.0, 0.5]), 0.7
    x = np.array([0.3, 0.1, -0.4])
    with jax.enable_x64(True):
        auto = jax.grad(least_squares_loss)(jnp.asarray(x), (jnp.asarray(a), b))
    np.testing.assert_allclose(np.asarray(auto), least_squares_grad(x, (a, b)), rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 0}, "n must"),
        ({"d": 2.5}, "d must"),
        ({"noise": float("inf")}, "noise"),
        ({"L": float("nan")}, "L must"),
        ({"cost_high": float("inf")}, "cost_high"),
        ({"min_norm_frac": 0.0}, "min_norm_frac"),
        ({"radius_factor": 0.5}, "radius_factor"),
        ({"cost_low": 5.0, "cost_high": 1.0}, "cost_low"),
        ({"gradient_bound": "tight"}, "gradient_bound"),
    ],
)
def test_bad_generator_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cs.least_squares(**{"n": 20, "d": 3, **kwargs})


@pytest.mark.parametrize("rng", [3.5, "0", np.random.RandomState(0)])
def test_rng_of_the_wrong_kind_is_a_type_error_naming_it(rng):
    with pytest.raises(TypeError, match="rng"):
        cs.least_squares(20, 3, rng=rng)


# --- logistic regression: the second problem type, with its own step ---------------------------


def numpy_logistic_sgd(prob, p, idx, eta, checkpoints):
    """Algorithm 1 on logistic regression as a plain float64 loop (the reference)."""
    A, y, lam, n = prob.A, prob.y, prob.regularization, prob.A.shape[0]

    def f(x):
        return np.mean(np.logaddexp(0.0, -y * (A @ x))) + 0.5 * lam * x @ x

    x, total, cost, out = np.zeros(A.shape[1]), np.zeros(A.shape[1]), 0.0, []
    for t, i in enumerate(idx, start=1):
        total += x
        margin = y[i] * (A[i] @ x)
        g = -y[i] / (1.0 + np.exp(margin)) * A[i] + lam * x
        x = x - eta * g / (n * p[i])
        x *= min(1.0, prob.radius / np.linalg.norm(x))
        cost += prob.c[i]
        if t in checkpoints:
            out.append((cost, f(total / t) - prob.f_star, f(x) - prob.f_star))
    return np.array(out).T


@pytest.mark.parametrize("backend", ["auto", "xla"])
def test_logistic_regression_on_the_engine_equals_a_numpy_loop(backend):
    prob = cs.logistic_regression(120, 4, rng=5, radius_factor=1.1)  # the ball is active
    P = np.stack([cs.uniform(prob.G, prob.c), cs.optimal(prob.G, prob.c)])
    T, M, checkpoints = 300, 2, [1, 17, 300]
    rng = np.random.default_rng(0)
    idx = np.stack([cs.sample(cs.alias_table(p), (M, T), rng=rng) for p in P])
    with jax.enable_x64(True):
        res = cs.cost_aware_sgd(
            prob, P, steps=T, trials=M, step_size=0.5, key=idx, checkpoints=checkpoints,
            options=cs.EngineOptions(backend=backend),
        )  # fmt: skip
    assert res.provenance["engine_backend"] == "xla"  # no native loop: XLA's step either way
    for s, p in enumerate(P):
        for m in range(M):
            cost, err_avg, err_last = numpy_logistic_sgd(prob, p, idx[s, m], 0.5, checkpoints)
            np.testing.assert_allclose(res.cost[s, m], cost, rtol=1e-12)
            np.testing.assert_allclose(res.error_average[s, m], err_avg, rtol=1e-7, atol=1e-13)
            np.testing.assert_allclose(res.error_last[s, m], err_last, rtol=1e-7, atol=1e-13)


def test_logistic_minimiser_bounds_and_interface():
    prob = cs.logistic_regression(300, 5, regularization=0.05, rng=2)
    grads = np.stack(
        [cs.problems.logistic_grad(prob.x_star, d) for d in zip(*prob.data, strict=True)]
    )
    assert np.linalg.norm(grads.mean(axis=0)) < 1e-10  # x* is the minimiser
    assert np.linalg.norm(prob.x_star) == pytest.approx(prob.radius / 2)
    assert float(cs.suboptimality(prob, prob.x_star)) == pytest.approx(0.0, abs=1e-12)
    assert prob.hessian is None and prob.G.shape == prob.c.shape == (300,)
    # the bound G_i holds on the ball and is attained at x = -y_i R a_i / ||a_i||
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5))
    x *= (prob.radius * rng.uniform(0, 1, 64) ** (1 / 5) / np.linalg.norm(x, axis=1))[:, None]
    for point in x:
        norms = [
            np.linalg.norm(cs.problems.logistic_grad(point, d))
            for d in zip(*prob.data, strict=True)
        ]
        assert np.all(np.asarray(norms) <= prob.G * (1 + 1e-12))
    row = np.linalg.norm(prob.A, axis=1)
    worst = -prob.y[:, None] * prob.radius * prob.A / row[:, None]
    attained = [
        np.linalg.norm(cs.problems.logistic_grad(w, d))
        for w, d in zip(worst, zip(*prob.data, strict=True), strict=True)
    ]
    np.testing.assert_allclose(attained, prob.G, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    x=st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=3, max_size=3),
    a=st.lists(st.floats(-3, 3, allow_subnormal=False), min_size=3, max_size=3),
    label=st.sampled_from([-1.0, 1.0]),
    lam=st.floats(0.0, 2.0),
    eta=st.floats(1e-3, 10),
    radius=st.floats(0.1, 10),
)
def test_logistic_step_equals_the_generic_step_by_autodiff(x, a, label, lam, eta, radius):
    """Its own step (the norm from ||a||^2, the ridge as a shrink) is the generic step on
    jax.grad of its loss, inside and outside the ball."""
    from costsgd.problems import GenericStep, logistic_loss, logistic_step

    with jax.enable_x64(True):
        x, a = jnp.asarray(x, jnp.float64), jnp.asarray(a, jnp.float64)
        want = GenericStep(logistic_loss)(x, (a, label, lam), eta, 0.7, radius)
        got = logistic_step(x, (a, label, lam, a @ a), eta, 0.7, radius)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"regularization": 0.0}, "regularization"),
        ({"L": -1.0}, "L must"),
        ({"radius_factor": 0.5}, "radius_factor"),
        ({"cost_low": 5.0, "cost_high": 1.0}, "cost_low"),
        ({"n": 0}, "n must"),
    ],
)
def test_bad_logistic_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cs.logistic_regression(**{"n": 20, "d": 3, **kwargs})
