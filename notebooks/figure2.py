# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figure 2, step by step
#
# §4.4 of *Cost-Aware Learning*: least squares with heterogeneous row norms and
# costs $c_i \sim \mathcal U[1, 1000]$, solved by Cost-Aware SGD (Algorithm 1)
# with three sampling distributions. This notebook runs a reduced size
# (N = 1000, d = 20, 4000 steps, 200 trials); `costsgd figure2` runs the paper's.

# %%
import tempfile
from pathlib import Path

import numpy as np

import costsgd as cs
from costsgd.experiments import figure2 as f2

# %% [markdown]
# ## 1. The problem: gradient bounds $G_i$ and costs $c_i$

# %%
prob = cs.least_squares(1000, 20, rng=0)
G, c = prob.G, prob.c
print(f"G_i in [{G.min():.3g}, {G.max():.3g}], c_i in [{c.min():.3g}, {c.max():.3g}]")
print(f"feasible radius R = {prob.radius:.3g}, f* = {prob.f_star:.4g}")

# %% [markdown]
# ## 2. The strategies and what the theory predicts
#
# Uniform $p_i = 1/n$, Variance $p_i \propto G_i$, Optimal $p_i \propto G_i/\sqrt{c_i}$
# (Theorem 4.1). Eq. 8 gives the cost ratios $K(p)/K(p^*) = J(p)/J(p^*)$ with
# $J = S\cdot C$; the iteration counts scale with $S(p)$.

# %%
names = ("uniform", "variance", "optimal")
P = np.stack([cs.uniform(G, c), cs.variance(G, c), cs.optimal(G, c)])
j_star = cs.optimal_cost_product(G, c)
for name, p in zip(names, P, strict=True):
    print(
        f"{name:<9} S(p) = {cs.second_moment(p, G):9.4g}   C(p) = {cs.expected_cost(p, c):6.1f}"
        f"   J(p)/J(p*) = {cs.cost_product(p, G, c) / j_star:.3f}"
    )

# %% [markdown]
# ## 3. Run Algorithm 1
#
# Constant step $\eta_p = D/\sqrt{S(p)T}$ (Eq. 3's regime, $D = 2R$), average
# iterate, errors at log-spaced checkpoints. One compiled call runs all
# strategies x all trials; trial $m$ uses the same random key for every strategy.

# %%
T, M = 4000, 200
eta = cs.theory_step_size(P, G, D=2 * prob.radius, steps=T)
res = cs.cost_aware_sgd(
    prob, P, steps=T, trials=M, step_size=eta, key=0, checkpoints=cs.log_checkpoints(T, 40)
)
mean_err = res.error_average.mean(axis=1)
for name, e in zip(names, mean_err, strict=True):
    print(f"{name:<9} error after {T} steps: {e[-1]:.4g}")

# %% [markdown]
# ## 4. The figure: error against steps and against cumulative cost

# %%
config = f2.PAPER._replace(n=1000, d=20, steps=T, trials=M)
results = f2.collect_results(res, P, eta, G, c, config)
png = f2.plot_results(results, Path(tempfile.gettempdir()) / "costsgd_figure2_small.png")
print(f"figure written to {png}")

# %% [markdown]
# ## 5. Read the two claims of §4.4 off the mean curves

# %%
target, rows = f2.summary(results)
print(f2.format_summary(target, rows))
by = {r.strategy: r for r in rows}
assert by["optimal"].cost == min(r.cost for r in rows)
print("Optimal reaches the target at the lowest cost")
assert by["variance"].steps == min(r.steps for r in rows)
print("Variance reaches the target in the fewest steps")
