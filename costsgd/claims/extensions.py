r"""Claims of Appendix F (the theory beyond convex SGD and the average iterate), on the
engine's step (:func:`costsgd.sgd_step`, :func:`costsgd.cost_aware_sgd`):

* F.2: :math:`p^*` stays the cheapest sampler for non-convex SGD to an
  :math:`\epsilon`-stationary point (:math:`T \propto S(p)/\epsilon^2`, so cost
  :math:`\propto J(p)`), on a sigmoid loss over a linear model;
* F.3: with a fixed step size the last iterate is at most a :math:`\log T` factor
  worse than the average.

Runs are in float64 (``jax.enable_x64`` inside the call only), Monte Carlo over trials.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from costsgd import samplers, theory
from costsgd.claims.base import Template, claim, describe, not_applicable, result
from costsgd.claims.engine import crossing

__all__ = [
    "appF2_nonconvex",
    "appF3_last_iterate",
    "kink_problem",
    "last_iterate_bound",
    "sigmoid_problem",
]

NONCONVEX_STRATEGIES = ("uniform", "variance", "length_only", "optimal")


# --- F.2: non-convex SGD to an ε-stationary point ----------------------------------


def sigmoid_problem(rng: Any, n: int = 200, d: int = 5):
    r"""A non-convex finite sum: weighted sigmoid losses of a linear classifier,
    :math:`f_i(x) = b_i\,\sigma(-y_i u_i^\top x)`, :math:`\sigma(z) = 1/(1 + e^{-z})`.

    Unit rows :math:`u_i` (uniform on the sphere), labels from a random direction
    with 10% flipped, loss weights :math:`b_i` lognormal(0, 1) (as a per-sequence
    loss is weighted by its advantage in GRPO). :math:`\|\nabla f_i(x)\| =
    b_i\sigma'(y_iu_i^\top x) \le b_i/4 = G_i`, and :math:`f` is
    :math:`L = \bar b/(6\sqrt3)`-smooth. Costs grow with the weight,
    :math:`c_i = b_i^2\,10^{U[0, 2]}`: the large-gradient components are the
    expensive ones, where variance sampling is poor (Theorem D.1) and length-only
    sampling favours the components that matter least.

    Returns:
      ``(U, y, b, c, L)``; :math:`G = b/4`.
    """
    gen = np.random.default_rng(rng)
    U = gen.normal(size=(n, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    w = gen.normal(size=d)
    y = np.sign(U @ w + 1e-12)
    y[gen.random(n) < 0.1] *= -1
    b = gen.lognormal(0.0, 1.0, n)
    c = b**2 * 10.0 ** gen.uniform(0.0, 2.0, n)
    return U, y, b, c, float(b.mean()) / (6 * np.sqrt(3))


def _sigmoid_grad(x, datum):
    import jax

    u, y, b = datum
    s = jax.nn.sigmoid(-y * (u @ x))
    return -b * y * s * (1.0 - s) * u


def _full_grad_sq(x, U, y, b):
    import jax
    import jax.numpy as jnp

    s = jax.nn.sigmoid(-y * (U @ x))
    g = U.T @ (-b * y * s * (1.0 - s)) / U.shape[0]
    return jnp.sum(g * g)


@functools.lru_cache(maxsize=4)
def _stationarity_program(blocks: int, every: int):
    """The jitted run: vmap over strategies and trials, scan over blocks of ``every``
    steps of :func:`costsgd.sgd_step`; after each block, :math:`\\|\\nabla f(x)\\|^2` and the
    cumulative cost."""
    import jax
    import jax.numpy as jnp

    from costsgd import SGDState, sample_jax, sgd_step
    from costsgd.problems import GenericStep

    step = GenericStep(None, _sigmoid_grad)  # the generic step, gradients given

    def trial(key, x0, table, weight, eta, U, y, b, c):
        def block(state, k):
            idx = sample_jax(jax.random.fold_in(key, k), table, (every,))

            def one(s, j):
                i = idx[j]
                datum = (U[i], y[i], b[i])
                return sgd_step(s, datum, weight[i], c[i], eta, jnp.inf, step=step), None

            state, _ = jax.lax.scan(one, state, jnp.arange(every))
            return state, (_full_grad_sq(state.x, U, y, b), state.cost)

        init = SGDState(x0, x0, jnp.zeros((), x0.dtype), jnp.int32(0))
        _, out = jax.lax.scan(block, init, jnp.arange(blocks))
        return out

    over_trials = jax.vmap(trial, in_axes=(0,) + (None,) * 8)
    over_strategies = jax.vmap(over_trials, in_axes=(None, None, 0, 0, 0) + (None,) * 4)
    return jax.jit(over_strategies)


def stationarity_runs(U, y, b, c, P, eta, *, steps: int, trials: int, every: int, key: int):
    r"""Non-convex SGD (Algorithm 1 with the engine's step, unconstrained, from 0) on the
    sigmoid problem for each row of ``P``: per strategy the mean over trials of
    :math:`\frac{1}{k}\sum_{j\le k}\|\nabla f(x_{j\cdot every})\|^2` (the expected squared
    gradient norm at a random iterate, Ghadimi and Lan, read every ``every`` steps) and
    the mean cumulative cost, at steps ``every, 2 every, ...``.

    Returns:
      ``(steps axis (K,), gradient curve (S, K), cost curve (S, K), its per-trial
      values at the last step (S, trials))``.
    """
    import jax
    import jax.numpy as jnp

    from costsgd import alias_table

    blocks = steps // every
    tables = [alias_table(p) for p in P]
    threshold = jnp.stack([jnp.asarray(t.threshold) for t in tables])
    alias = jnp.stack([jnp.asarray(t.alias, dtype=jnp.int32) for t in tables])
    weight = np.where(P > 0, 1.0 / (P.shape[1] * np.maximum(P, 1e-300)), 0.0)
    keys = jax.random.split(jax.random.key(key), trials)
    table = type(tables[0])(accept=threshold, alias=alias, threshold=threshold)
    grad_sq, cost = _stationarity_program(blocks, every)(
        keys,
        jnp.zeros(U.shape[1]),
        table,
        jnp.asarray(weight),
        jnp.asarray(eta),
        jnp.asarray(U),
        jnp.asarray(y),
        jnp.asarray(b),
        jnp.asarray(c),
    )
    grad_sq, cost = np.asarray(grad_sq), np.asarray(cost)  # (S, trials, blocks)
    running = np.cumsum(grad_sq, axis=2) / np.arange(1, blocks + 1)
    ticks = every * np.arange(1, blocks + 1)
    return ticks, running.mean(axis=1), cost.mean(axis=1), running[:, :, -1]


def _f2_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    run = {"horizon": 500, "trials": 100} if quick else {"horizon": 2000, "trials": 200}
    count = 1 if quick else 2
    return [
        {**run, "seed": int(rng.integers(2**31)), "label": "sigmoid loss"} for _ in range(count)
    ]


@claim(
    "appF.2-nonconvex",
    reference="App. F.2",
    statement="non-convex SGD to E‖∇f‖² <= ε: T ∝ S(p)/ε², so p* (least J(p)) costs least",
    template=Template("upper", z=0.0),
    instances=_f2_cases,
    runtime="jax",
    cost=1.5,
)
def appF2_nonconvex(
    seed: int = 0,
    *,
    horizon: int = 500,
    trials: int = 100,
    every: int = 10,
    label: str = "",
    rng: Any = None,
    tested: Any = None,
):
    r"""Appendix F.2 on :func:`sigmoid_problem` (n = 200, d = 5), for uniform, variance,
    length-only and optimal sampling, and the ``tested`` sampler when given (a
    ``(G, c) -> p`` function standing in for :math:`p^*`; by default :math:`p^*` is tested).

    Ghadimi and Lan: with step :math:`\eta` and :math:`\Delta = f(x_1) - \inf f`,
    :math:`\frac1T\sum_t \mathbb E\|\nabla f(x_t)\|^2 \le 2\Delta/(\eta T) + L\eta S(p)`;
    the step that guarantees a target :math:`\epsilon` soonest is
    :math:`\eta_p = \epsilon/(2LS(p))`, after :math:`T_p = 8L\Delta S(p)/\epsilon^2`
    steps: :math:`T \propto S(p)`, cost :math:`\propto J(p)`. Every strategy runs
    (unconstrained, from 0, ``trials`` trials) with :math:`\eta_p \propto 1/S(p)`,
    scaled so that :math:`p^*` has Ghadimi and Lan's step for ``horizon`` steps; the
    target :math:`\epsilon` is :math:`p^*`'s mean running mean of
    :math:`\|\nabla f(x_t)\|^2` (the expected squared gradient norm at a random
    iterate) at ``horizon``; each strategy's cost to reach it is read off its own
    curve (log-log interpolation between records every ``every`` steps) within
    ``24 * horizon`` steps (enough for :math:`S(p)/S(p^*)` up to about 20).

    Numerical: cost(tested) over the least cost of them all; theoretical: 1 (``tested``
    is the cheapest). ``details`` gives every strategy's cost and steps relative to
    :math:`p^*`'s beside the predicted :math:`J(p)/J(p^*)` and :math:`S(p)/S(p^*)`.
    """
    import jax

    U, y, b, c, L = sigmoid_problem(seed)
    G = b / 4
    P = np.stack(
        [np.asarray(getattr(samplers, s)(G, c), dtype=np.float64) for s in NONCONVEX_STRATEGIES]
        + ([] if tested is None else [np.asarray(tested(G, c), dtype=np.float64)])
    )
    S = np.array([theory.second_moment(p, G) for p in P])
    J = np.array([theory.cost_product(p, G, c) for p in P])
    i_opt = NONCONVEX_STRATEGIES.index("optimal")
    delta = float(b.mean()) / 2  # f(0) = mean b/2, f >= 0
    eta = np.sqrt(2 * delta / (L * S[i_opt] * horizon)) * S[i_opt] / S
    steps = 24 * horizon  # fixed, so that one compiled program serves every instance
    where = describe(G, c, label or "sigmoid loss", T=horizon, trials=trials)
    gen = np.random.default_rng(rng)
    with jax.enable_x64(True):
        ticks, curve, cost, _ = stationarity_runs(
            U,
            y,
            b,
            c,
            P,
            eta,
            steps=steps,
            trials=trials,
            every=every,
            key=int(gen.integers(2**31)),
        )
    eps = float(np.interp(horizon, ticks, curve[i_opt]))
    reached = np.array([crossing(ticks, cost[s], curve[s], eps) for s in range(len(P))])
    if not np.all(np.isfinite(reached)):
        return not_applicable(
            "appF.2-nonconvex", "a strategy did not reach ε within its horizon", instance=where
        )
    t, k = reached[:, 0], reached[:, 1]
    details = {}
    for i, name in enumerate(NONCONVEX_STRATEGIES):
        details[f"{name} cost/p*"] = float(k[i] / k[i_opt])
        details[f"{name} J/J*"] = float(J[i] / J[i_opt])
        details[f"{name} steps/p*"] = float(t[i] / t[i_opt])
        details[f"{name} S/S*"] = float(S[i] / S[i_opt])
    reason = ", ".join(
        f"{n} cost {details[f'{n} cost/p*']:.2f}x (J {details[f'{n} J/J*']:.2f}x)"
        for n in NONCONVEX_STRATEGIES
        if n != "optimal"
    )
    return result(
        "appF.2-nonconvex",
        float((k[i_opt] if tested is None else k[-1]) / k.min()),
        1.0,
        instance=f"{where}, ε={eps:.3g}",
        reason=reason,
        details=details,
    )


# --- F.3: the last iterate under a fixed step size ---------------------------------


def _kink_loss(x, datum):
    import jax.numpy as jnp

    b, a, _ = datum
    return b * jnp.abs(x[0] - a)


def _kink_grad(x, datum):
    import jax.numpy as jnp

    b, a, scale = datum
    return b * scale * jnp.sign(x - a)


def kink_problem(b: Any, a: Any, c: Any, *, scale: Any = None):
    r""":math:`f_i(x) = b_i|x - a_i|` on :math:`[-1, 1]` (:math:`D = 2`, :math:`G_i = b_i`):
    convex, non-smooth, minimised at the :math:`b`-weighted median of the :math:`a_i`.

    ``scale`` multiplies each component's gradient (default 1); the errors are always
    those of :math:`f` (a broken gradient for the tests, e.g. :math:`np_i\nabla f_i`,
    which cancels the engine's importance weight).

    Examples:
      >>> prob = kink_problem([1.0, 1.0, 3.0], [-0.5, 0.0, 0.5], [1.0, 1.0, 1.0])
      >>> prob.x_star.tolist(), prob.f_star
      ([0.5], 0.5)
    """
    from costsgd.problems import FiniteSum

    b, a = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    scale = np.ones(b.size) if scale is None else np.asarray(scale, dtype=np.float64)
    order = np.argsort(a)
    cum = np.cumsum(b[order])
    star = float(a[order][np.searchsorted(cum, cum[-1] / 2)])
    return FiniteSum(
        loss=_kink_loss,
        data=(b, a, scale),
        G=b,
        c=np.asarray(c, dtype=np.float64),
        radius=1.0,
        x_star=np.array([star]),
        f_star=float(np.mean(b * np.abs(star - a))),
        grad=_kink_grad,
    )


def last_iterate_bound(S: Any, D: float, eta: Any, steps: Any) -> np.ndarray:
    r"""The last iterate's guarantee under a fixed step :math:`\eta` for :math:`T` steps:

    .. math::
       \mathbb E f(x_T) - f^* \le \frac{D^2}{2\eta T} + \frac{\eta S}{2}\,(1 + H_{T-1}),
       \qquad H_k = \sum_{j\le k} 1/j,

    from the regret of the last :math:`k+1` steps against :math:`x_{T-k}` (Shamir and
    Zhang's suffix argument, Orabona's constant-step form): the means
    :math:`S_k` of :math:`\mathbb E f` over the last :math:`k+1` iterates satisfy
    :math:`S_{k-1} \le S_k + \eta S/(2k)`, and :math:`S_{T-1} - f^*` is the average's
    :math:`D^2/(2\eta T) + \eta S/2`. At :math:`\eta = D/\sqrt{ST}` it is
    :math:`(2 + H_{T-1})/2` times the average's :math:`D\sqrt S/\sqrt T`: the
    :math:`\log T` factor of Appendix F.3.

    Examples:
      >>> float(last_iterate_bound(1.0, 2.0, 2.0 / 10, 100) / (2.0 / 10))  # (2 + H_99)/2
      3.5887
    """
    steps = np.asarray(steps, dtype=np.float64)
    harmonic = np.array([np.sum(1.0 / np.arange(1, int(t))) for t in np.atleast_1d(steps)])
    harmonic = harmonic.reshape(steps.shape)
    eta = np.asarray(eta, dtype=np.float64)
    return D**2 / (2 * eta * steps) + eta * np.asarray(S) / 2 * (1 + harmonic)


def _f3_cases(rng: np.random.Generator, quick: bool) -> list[dict[str, Any]]:
    horizons = 2 ** np.arange(8, 15 if quick else 16)
    trials = 128 if quick else 400
    n = 20
    out = []
    for kind in ("optimal", "variance") if quick else ("optimal", "variance", "uniform"):
        out.append(
            {
                "b": rng.lognormal(0.0, 1.0, n),
                "a": rng.uniform(-0.5, 0.5, n),
                "c": 10.0 ** rng.uniform(0.0, 3.0, n),
                "strategy": kind,
                "horizons": [int(h) for h in horizons],
                "trials": trials,
                "label": f"b_i|x - a_i|, {kind} sampling",
            }
        )
    return out


@claim(
    "appF.3-last-iterate",
    reference="App. F.3",
    statement="fixed step η = D/√(S(p)T): E f(x_T) - f* <= (2 + H_{T-1})/2 · D√S(p)/√T, a log T"
    " factor over the average's bound",
    template=Template("upper"),
    instances=_f3_cases,
    runtime="jax",
    cost=1.3,
)
def appF3_last_iterate(
    b: Any = None,
    a: Any = None,
    c: Any = None,
    *,
    strategy: str = "optimal",
    horizons: Any = (256, 1024, 4096),
    trials: int = 200,
    weighted: bool = True,
    label: str = "",
    rng: Any = None,
):
    r"""Appendix F.3 on :func:`kink_problem` from :math:`x_1 = -1`: for each horizon
    :math:`T` the fixed step :math:`\eta_T = D/\sqrt{S(p)T}` (one engine run, the
    horizons as strategies sharing :math:`p`), the mean last-iterate error at :math:`T`
    against :func:`last_iterate_bound`, and the ratio of the last iterate's error to the
    average's, whose slope against :math:`\ln T` is in ``details`` (Harvey et al.'s
    :math:`\log T` gap is a worst case: it needs a special function).

    ``weighted=False`` runs a deliberately broken SGD that drops the importance
    weights (its gradient estimate is biased: it converges to the wrong point).

    Numerical: the largest, over :math:`T`, of the mean last-iterate error over the
    bound; theoretical: 1.
    """
    import jax

    import costsgd as cs

    gen = np.random.default_rng(rng)
    b = gen.lognormal(0.0, 1.0, 20) if b is None else np.asarray(b, dtype=np.float64)
    a = gen.uniform(-0.5, 0.5, b.size) if a is None else np.asarray(a, dtype=np.float64)
    c = 10.0 ** gen.uniform(0.0, 3.0, b.size) if c is None else np.asarray(c, dtype=np.float64)
    p = np.asarray(getattr(samplers, strategy)(b, c), dtype=np.float64)
    # broken: the engine divides by n p_i, so n p_i ∇f_i drops the importance weight
    prob = kink_problem(b, a, c, scale=None if weighted else b.size * p)
    horizons = np.asarray(horizons, dtype=np.int64)
    S = theory.second_moment(p, b)
    eta = 2.0 / np.sqrt(S * horizons)
    T = int(horizons.max())
    where = describe(b, c, label or "kink", T=f"{horizons.min()}..{T}", trials=trials)
    with jax.enable_x64(True):
        res = cs.cost_aware_sgd(
            prob,
            np.repeat(p[None, :], horizons.size, axis=0),
            steps=T,
            trials=trials,
            step_size=eta,  # one constant per horizon (strategy row)
            x0=np.array([-1.0]),
            checkpoints=horizons,
            key=int(gen.integers(2**31)),
        )
    k = np.arange(horizons.size)
    last = res.error_last[k, :, k]  # (horizons, trials): strategy k read at its own T
    avg = res.error_average[k, :, k]
    bound = last_iterate_bound(S, 2.0, eta, horizons)
    ratio = last.mean(axis=1) / bound
    se = last.std(axis=1, ddof=1) / np.sqrt(trials) / bound
    worst = int(np.argmax(ratio - 4 * se))
    gap = last.mean(axis=1) / np.maximum(avg.mean(axis=1), 1e-300)
    slope = float(np.polyfit(np.log(horizons), gap, 1)[0])
    details = {f"T={h} last/bound": float(r) for h, r in zip(horizons, ratio, strict=True)}
    details |= {f"T={h} last/average": float(g) for h, g in zip(horizons, gap, strict=True)}
    details["slope of last/average vs ln T"] = slope
    reason = (
        f"last/average {gap.min():.2f}..{gap.max():.2f} (slope {slope:.3f} per ln T; the"
        f" bound's factor (2 + H)/2 reaches {bound[-1] * np.sqrt(S * horizons[-1]) / 2:.2f})"
    )
    return result(
        "appF.3-last-iterate",
        ratio[worst],
        1.0,
        stderr=se[worst],
        instance=where,
        reason=reason,
        details=details,
        provenance=res.provenance,
    )
