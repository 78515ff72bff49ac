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
