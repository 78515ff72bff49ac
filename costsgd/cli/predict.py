"""``costsgd predict``: the predicted cost of each strategy on the §4.4 set-up (Eq. 8, 10)."""

from __future__ import annotations

import argparse
import math

from costsgd.cli.common import UserError, non_negative_int, positive_float, positive_int

__all__ = ["register"]


def register(sub) -> None:
    """Add ``predict``."""
    p = sub.add_parser(
        "predict", help="predicted cost of each strategy on the §4.4 set-up (Eq. 8, 10)"
    )
    p.add_argument("--n", type=positive_int, default=3000, help="components N (default 3000)")
    p.add_argument("--d", type=positive_int, default=50, help="dimension d (default 50)")
    p.add_argument("--L", type=positive_float, default=10.0, help="Lipschitz constant L")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the instance")
    p.set_defaults(run=_predict, parser=p)


def _predict(args: argparse.Namespace) -> int:
    import costsgd as cs

    try:
        prob = cs.least_squares(args.n, args.d, L=args.L, rng=args.seed)
    except ValueError as err:  # an instance beyond float64 (L = 1e300)
        raise UserError(f"argument --L: {err}") from err
    G, c = prob.G, prob.c
    # S(p) scales with G^2 and the ratios not at all: computed on G / max G, so that
    # S(p) ~ 1e600 (L = 1e150) is printed as it is, and the ratios are not inf/inf.
    scale = float(G.max())
    g = G / scale
    strategies = {"uniform": cs.uniform, "variance": cs.variance, "optimal": cs.optimal}
    j_star = cs.optimal_cost_product(g, c)
    print(
        f"§4.4 least squares: N={args.n}, d={args.d}, L={args.L}, c ~ U[1, 1000], seed={args.seed}"
    )
    print(f"G_i in [{G.min():.3g}, {G.max():.3g}], radius R = {prob.radius:.3g}")
    print()
    print(f"{'strategy':<10} {'S(p)':>12} {'C(p)':>10} {'J(p)/J(p*)':>12} {'T/T(p*)':>9}")
    s_star = cs.second_moment(cs.optimal(g, c), g)
    for name, sampler in strategies.items():
        p = sampler(g, c)
        s, cost = cs.second_moment(p, g), cs.expected_cost(p, c)
        shown = _scientific(math.log10(s) + 2 * math.log10(scale))
        print(f"{name:<10} {shown:>12} {cost:10.4g} {s * cost / j_star:12.4f} {s / s_star:9.4f}")
    r = cs.cost_ratios(G, c)
    print()
    print(
        f"Eq. 8:  K(p*)/K(unif) = {r.optimal_vs_uniform:.4f}   "
        f"K(p*)/K(var) = {r.optimal_vs_variance:.4f}"
    )
    print(f"Eq. 10: K(var)/K(unif) = {r.variance_vs_uniform:.4f}")
    print("(J = S·C ∝ expected total cost to reach a target error, Eq. 3/4; T ∝ S.)")
    return 0


def _scientific(log10_value: float) -> str:
    """``10**log10_value`` as ``%.4g`` would print it, also beyond float64's range.

    Examples:
      >>> _scientific(2.0), _scientific(600.30103)
      ('100', '2e+600')
    """
    if abs(log10_value) < 300:
        return f"{10.0**log10_value:.4g}"
    exponent = math.floor(log10_value)
    mantissa = 10.0 ** (log10_value - exponent)
    if round(mantissa, 3) >= 10.0:
        mantissa, exponent = mantissa / 10.0, exponent + 1
    return f"{mantissa:.4g}e{exponent:+d}"
