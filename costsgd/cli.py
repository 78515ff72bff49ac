"""The ``costsgd`` command line."""

from __future__ import annotations

import argparse
import sys

from costsgd.experiments import figure2, figure6
from costsgd.experiments.grpo import cli as grpo_study

__all__ = ["main"]


def _predict(args: argparse.Namespace) -> int:
    import costsgd as cs

    prob = cs.least_squares(args.n, args.d, L=args.L, seed=args.seed)
    G, c = prob.G, prob.c
    strategies = {"uniform": cs.uniform, "variance": cs.variance, "optimal": cs.optimal}
    j_star = cs.optimal_cost_product(G, c)
    print(
        f"§4.4 least squares: N={args.n}, d={args.d}, L={args.L}, c ~ U[1, 1000], seed={args.seed}"
    )
    print(f"G_i in [{G.min():.3g}, {G.max():.3g}], radius R = {prob.radius:.3g}")
    print()
    print(f"{'strategy':<10} {'S(p)':>12} {'C(p)':>10} {'J(p)/J(p*)':>12} {'T/T(p*)':>9}")
    s_star = cs.second_moment(cs.optimal(G, c), G)
    for name, sampler in strategies.items():
        p = sampler(G, c)
        s, cost = cs.second_moment(p, G), cs.expected_cost(p, c)
        print(f"{name:<10} {s:12.4g} {cost:10.4g} {s * cost / j_star:12.4f} {s / s_star:9.4f}")
    r = cs.cost_ratios(G, c)
    print()
    print(
        f"Eq. 8:  K(p*)/K(unif) = {r.optimal_vs_uniform:.4f}   "
        f"K(p*)/K(var) = {r.optimal_vs_variance:.4f}"
    )
    print(f"Eq. 10: K(var)/K(unif) = {r.variance_vs_uniform:.4f}")
    print("(J = S·C ∝ expected total cost to reach a target error, Eq. 3/4; T ∝ S.)")
    return 0


def add_verify_parser(sub) -> None:
    """``costsgd verify``: the paper's claims checked live (:mod:`costsgd.claims`)."""
    from costsgd import claims

    verify = sub.add_parser(
        "verify",
        help="check the paper's claims on fresh random instances and print the verdicts",
    )
    verify.add_argument("--quick", action="store_true", help="fewer, smaller instances (~30 s)")
    verify.add_argument(
        "--claim",
        action="append",
        choices=list(claims.CLAIMS),
        metavar="NAME",
        help=f"check only this claim (repeatable): {', '.join(claims.CLAIMS)}",
    )
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--out", help="write every instance's result as JSON to this file")
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    import json

    from costsgd import claims

    verdicts = claims.run(args.claim, seed=args.seed, quick=args.quick)
    print(claims.render_text(verdicts))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(claims.to_json(verdicts, seed=args.seed, quick=args.quick), fh, indent=1)
        print(f"wrote {args.out}")
    bad = claims.unexpected_failures(verdicts)
    if bad:
        print(f"claims expected to hold that failed: {', '.join(v.name for v in bad)}")
    return 1 if bad else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costsgd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser(
        "predict", help="predicted cost of each strategy on the §4.4 set-up (Eq. 8, 10)"
    )
    predict.add_argument("--n", type=int, default=3000)
    predict.add_argument("--d", type=int, default=50)
    predict.add_argument("--L", type=float, default=10.0)
    predict.add_argument("--seed", type=int, default=0)
    predict.set_defaults(func=_predict)
    figure2.add_parsers(sub)
    figure6.add_parsers(sub)  # after figure2: extends its `plot`
    grpo_study.add_parser(sub)
    add_verify_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
