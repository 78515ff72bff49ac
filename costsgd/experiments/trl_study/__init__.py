"""Cost-Aware GRPO trained end to end in TRL (CPU, offline).

Modules: :mod:`.walk` (the GRPO study's walk task for TRL: tokenizer,
dataset, reward, a small Llama built in code, warm start, exact held-out
accuracy), :mod:`.phases` (timing TRL's generation and update phases from
outside, token counts), :mod:`.study` (sweep and arms x seeds, the results
file, resumable) and :mod:`.report` (thresholds, savings, verdict, figure).
Run it with ``python benchmarks/trl_study.py``; needs ``costsgd[trl]``.
"""
