"""The init/step pair (sgd_algorithm) in a user's own loop, against the driver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import costsgd as cs
from costsgd.problems import least_squares_loss

T, M = 200, 3
CHECKPOINTS = [1, 50, 199]


def generic(prob):
    """``prob`` as a FiniteSum with only a loss: the generic step, gradients by autodiff."""
    return cs.FiniteSum(
        least_squares_loss, prob.data, G=prob.G, c=prob.c, radius=prob.radius,
        x_star=prob.x_star, f_star=prob.f_star, hessian=prob.hessian,
    )  # fmt: skip


PROBLEMS = {
    "least_squares": lambda: cs.least_squares(80, 4, rng=3, radius_factor=1.2),
    "logistic": lambda: cs.logistic_regression(80, 4, rng=3, radius_factor=1.2),
    "generic": lambda: generic(cs.least_squares(80, 4, rng=3, radius_factor=1.2)),
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("schedule", [False, True])
def test_the_driver_equals_init_and_step_in_a_users_scan(name, schedule):
    """Same indices, same steps: the final states are equal bit for bit, and the recorded
    errors are the problem's suboptimality at the iterates the user's loop reaches."""
    prob = PROBLEMS[name]()
    p = cs.optimal(prob.G, prob.c)
    step_size = cs.inverse_time_schedule(0.05, offset=20) if schedule else 0.05
    idx = cs.sample(cs.alias_table(p), (M, T), rng=1)
    x0 = np.full(4, 0.3)
    with jax.enable_x64(True):
        res = cs.cost_aware_sgd(
            prob, p, steps=T, trials=M, step_size=step_size, key=idx, x0=x0,
            checkpoints=CHECKPOINTS, options=cs.EngineOptions(backend="xla", chunk=64),
        )  # fmt: skip
        sgd = cs.sgd_algorithm(prob, p, step_size=step_size)

        def one_trial(indices):
            def body(state, i):
                state, _ = sgd.update(state, i)
                return state, (state.average, state.x, state.cost)

            return jax.lax.scan(body, sgd.init(x0), indices)

        final, (averages, iterates, costs) = jax.jit(jax.vmap(one_trial))(idx)
        at = np.asarray(CHECKPOINTS) - 1
        err = jax.vmap(jax.vmap(lambda x: cs.suboptimality(prob, x)))
        error_average, error_last = err(averages[:, at]), err(iterates[:, at])
    for name_, got, want in (
        ("x", res.final.x, final.x),
        ("average", res.final.average, final.average),
        ("cost", res.final.cost, final.cost),
        ("t", res.final.t, final.t),
    ):
        np.testing.assert_array_equal(got, np.asarray(want), err_msg=name_)
    np.testing.assert_allclose(res.cost, costs[:, at], rtol=1e-15)
    np.testing.assert_allclose(res.error_average, error_average, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(res.error_last, error_last, rtol=1e-9, atol=1e-15)
    assert res.final.t.tolist() == [T] * M


def test_step_draws_from_p_and_jits_once():
    prob = cs.least_squares(50, 3, rng=0)
    p = cs.smooth(cs.optimal(prob.G, prob.c), 0.2)
    sgd = cs.sgd_algorithm(prob, p, step_size=1e-3)
    traces = []

    @jax.jit
    def run(key, state):
        traces.append(1)

        def body(s, k):
            s, info = sgd.step(k, s)
            return s, info.index

        return jax.lax.scan(body, state, jax.random.split(key, 20_000))

    state, drawn = run(jax.random.key(0), sgd.init())
    run(jax.random.key(1), state)
    assert len(traces) == 1
    freq = np.bincount(np.asarray(drawn), minlength=50) / drawn.size
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p.max() / drawn.size))
    assert int(state.t) == 20_000 and float(state.cost) > 0


def test_init_projects_x0_and_checks_its_input():
    prob = cs.least_squares(30, 3, rng=0)
    sgd = cs.sgd_algorithm(prob, cs.uniform(prob.G, prob.c), step_size=0.1)
    start = sgd.init(np.full(3, 1e6))
    np.testing.assert_allclose(np.linalg.norm(start.x), prob.radius, rtol=1e-6)
    assert int(start.t) == 0 and float(start.cost) == 0
    with pytest.raises(ValueError, match="x0"):
        sgd.init(np.zeros(4))
    with pytest.raises(ValueError, match="p must have shape \\(n,\\)"):
        cs.sgd_algorithm(prob, np.stack([cs.uniform(prob.G, prob.c)] * 2), step_size=0.1)
    with pytest.raises(TypeError, match="step_size"):
        cs.sgd_algorithm(prob, cs.uniform(prob.G, prob.c), step_size="big")
    with pytest.raises(ValueError, match="mu"):
        cs.inverse_time_schedule(1e-310)
    no_min = generic(prob)._replace(x_star=None, hessian=None)
    no_min_sgd = cs.sgd_algorithm(no_min, cs.uniform(prob.G, prob.c), step_size=0.1)
    with pytest.raises(ValueError, match="x0 is required"):
        no_min_sgd.init()
    assert no_min_sgd.init(jnp.zeros(3)).x.shape == (3,)
