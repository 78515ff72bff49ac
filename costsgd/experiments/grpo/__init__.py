"""A mini Cost-Aware GRPO study that runs on a CPU (§5 of the paper at laptop scale).

Modules: :mod:`.task` (a sorting task with a verifiable reward), :mod:`.policy`
(a tiny GRU policy, sampling, warm start), :mod:`.trainer` (GRPO / CISPO with
the cost-aware mini-batches of Algorithm 2, via :mod:`costsgd.torch`),
:mod:`.diagnostics` (Figure 3), :mod:`.study` (all settings x methods x seeds,
results file) and :mod:`.report` (Table 1, token savings, Figure 4).
Run it with ``costsgd grpo-study``.
"""
