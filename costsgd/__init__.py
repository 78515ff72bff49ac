"""costsgd: cost-aware learning.

Sampling distributions that trade gradient information against per-example
cost (p ∝ G/√c, Theorem 4.1 of *Cost-Aware Learning*), the theory that
prices them, and Cost-Aware SGD. The torch adapter lives in
:mod:`costsgd.torch` and is imported only on request.
"""

from costsgd.draw import AliasTable, alias_table, implied_probabilities, sample, sample_jax
from costsgd.engine import (
    Checkpoints,
    SGDResult,
    SGDState,
    cost_aware_sgd,
    inverse_time_schedule,
    log_checkpoints,
    sgd_step,
    theory_step_size,
)
from costsgd.hardness import (
    HardInstance,
    LowerBound,
    cost_uniform_set,
    hard_instance,
    lower_bound,
)
from costsgd.problems import FiniteSum, LeastSquares, least_squares, objective, suboptimality
from costsgd.samplers import length_only, noisy_proxy, nonzero, optimal, smooth, uniform, variance
from costsgd.subset import (
    GammaTradeoff,
    MinKnapsack,
    SubsetSolution,
    gamma_tradeoff,
    knapsack,
    knapsack_exact,
    knapsack_greedy,
    knapsack_lp,
    knapsack_two_approx,
    subset_total_cost,
)
from costsgd.theory import (
    CostRatios,
    VarianceVsUniform,
    chi2_divergence,
    chi2_gap,
    cost_biased,
    cost_product,
    cost_ratios,
    expected_cost,
    exponential_example,
    iterations,
    log_cost_ratios,
    optimal_cost_product,
    optimal_total_cost,
    predicted_proxy_gap,
    second_moment,
    second_order_proxy_gap,
    total_cost,
    variance_beats_uniform,
)

__version__ = "0.1.0"
"""The version of this package."""

__all__ = [
    "AliasTable",
    "Checkpoints",
    "CostRatios",
    "FiniteSum",
    "GammaTradeoff",
    "HardInstance",
    "LeastSquares",
    "LowerBound",
    "MinKnapsack",
    "SGDResult",
    "SGDState",
    "SubsetSolution",
    "VarianceVsUniform",
    "__version__",
    "alias_table",
    "chi2_divergence",
    "chi2_gap",
    "cost_aware_sgd",
    "cost_biased",
    "cost_product",
    "cost_ratios",
    "cost_uniform_set",
    "expected_cost",
    "exponential_example",
    "gamma_tradeoff",
    "hard_instance",
    "implied_probabilities",
    "inverse_time_schedule",
    "iterations",
    "knapsack",
    "knapsack_exact",
    "knapsack_greedy",
    "knapsack_lp",
    "knapsack_two_approx",
    "least_squares",
    "length_only",
    "log_checkpoints",
    "log_cost_ratios",
    "lower_bound",
    "noisy_proxy",
    "nonzero",
    "objective",
    "optimal",
    "optimal_cost_product",
    "optimal_total_cost",
    "predicted_proxy_gap",
    "sample",
    "sample_jax",
    "second_moment",
    "second_order_proxy_gap",
    "sgd_step",
    "smooth",
    "suboptimality",
    "subset_total_cost",
    "theory_step_size",
    "total_cost",
    "uniform",
    "variance",
    "variance_beats_uniform",
]
