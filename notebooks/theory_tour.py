# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A tour of the theory of cost-aware learning (§4 of the paper)
#
# Each cell checks one claim numerically on a concrete instance. The property
# tests in `tests/test_theory.py` check the same claims on thousands of
# generated instances; this notebook is the readable version.

# %%
import numpy as np

import costsgd as cs

prob = cs.least_squares(rng=0)  # the §4.4 instance: N = 3000, d = 50, c ~ U[1, 1000]
G, c = prob.G, prob.c

# %% [markdown]
# ## Theorem 4.1: p* ∝ G/√c minimises J(p) = S(p) C(p)

# %%
p_star = cs.optimal(G, c)
J_star = cs.cost_product(p_star, G, c)
print(f"J(p*) = {J_star:.6g}, closed form (1/n Σ G√c)² = {cs.optimal_cost_product(G, c):.6g}")
rng = np.random.default_rng(0)
best = min(cs.cost_product(rng.dirichlet(np.ones(G.size)), G, c) for _ in range(100))
print(f"best of 100 random distributions: J = {best:.6g} (>= J(p*): {best >= J_star})")
assert abs(J_star / cs.optimal_cost_product(G, c) - 1) < 1e-10 and best >= J_star

# %% [markdown]
# ## Eq. 8 and Eq. 10: what the baselines cost

# %%
r = cs.cost_ratios(G, c)
print(f"K(p*)/K(unif) = {r.optimal_vs_uniform:.4f}")
print(f"K(p*)/K(var)  = {r.optimal_vs_variance:.4f}")
print(f"K(var)/K(unif) = {r.variance_vs_uniform:.4f}")
print("Theorem D.1 condition (variance beats uniform):", cs.variance_beats_uniform(G, c))

# %% [markdown]
# ## Theorem 4.2: a proxy's loss is a χ² divergence between cost-biased distributions
#
# Take the length-only proxy p ∝ 1/√c (G replaced by 1) and smoothed versions of p*.

# %%
for name, p in {
    "length-only": cs.length_only(G, c),
    "smooth(p*, 0.1)": cs.smooth(p_star, 0.1),
    "uniform": cs.uniform(G, c),
}.items():
    direct = cs.cost_product(p, G, c) / J_star
    print(f"{name:>16}: J/J* = {direct:.6f}   1 + χ² gap = {1 + cs.chi2_gap(p, G, c):.6f}")
    assert abs(direct - (1 + cs.chi2_gap(p, G, c))) < 1e-9 * direct

# %% [markdown]
# ## Theorem D.5: noisy proxies, predicted vs measured

# %%
sigma = 0.5  # small next to G_i, which lies in [2.4, 263] here
draws = [cs.cost_product(cs.noisy_proxy(G, c, sigma**2, rng=k), G, c) / J_star for k in range(200)]
print(f"measured E[J(p')]/J(p*) = {np.mean(draws):.6f} ± {np.std(draws) / np.sqrt(200):.1e}")
print(f"Theorem D.5 predicts    = {cs.predicted_proxy_gap(G, c, sigma2=sigma**2):.6f}")

# %% [markdown]
# ## §4.3: exponential gains when gradients and costs are anti-correlated

# %%
for n in (10, 100, 1000, 10_000):
    logs = cs.log_cost_ratios(*cs.exponential_example(n))
    print(
        f"n = {n:>6}: log2 K*/K_unif = {logs.optimal_vs_uniform / np.log(2):>10.2f} (≈ -n/2),"
        f"  log2 K*/K_var = {logs.optimal_vs_variance / np.log(2):>9.2f} (≈ -n/4)"
    )
