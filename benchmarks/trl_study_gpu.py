"""The TRL study at GPU scale: a bigger Llama, larger pools, vLLM generation where installed.

NOT RUN: no GPU was lent to the session that wrote it, so this script has no measured result
yet; the CPU study (``benchmarks/trl_study.py``, docs/trl.md) is the one with numbers. It runs
the same pipeline (``costsgd.experiments.trl_study``: sweep, four arms, exact held-out accuracy,
update phase timed apart from generation, the same report and verdict) with:

* a Llama of 8 layers x 512 (about 25 M parameters) built in code, warm-started on the walk;
* generation batches of 64 prompts x 16 rollouts (N = 1024), optimizer steps of B = 256
  (T = 4, the paper's Table 2 ratio), micro-batches of 32;
* bf16 on the GPU; vLLM colocated for generation when ``import vllm`` works (``--no-vllm`` to
  use transformers' ``generate``), one run at a time on the one GPU.

    PYTHONPATH=. python benchmarks/trl_study_gpu.py --out results/trl_study_gpu [--quick]

``--quick`` (2 seeds, one learning rate, 20 generation batches; its report says the warm start's
accuracy: tune ``--warm-start-steps`` to about half the ceiling of 40%) checks the pipeline on the GPU
in minutes before the full run. Writes the files ``benchmarks/trl_study.py`` writes; rerunning
with the same ``--out`` resumes. When it has run, put its command, commit, GPU and the report's
verdict and target lines in docs/trl.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from costsgd.experiments.trl_study import report, study


def gpu_config(
    *, use_vllm: bool, quick: bool, warm_start_steps: int | None = None
) -> study.StudyConfig:
    """The GPU-scale study (module doc)."""
    config = study.default_config(
        device="cuda",
        use_vllm=use_vllm,
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        warm_start_steps=60,
        warm_start_batch=256,
        warm_start_lr=1e-3,
        prompts_per_iteration=64,
        rollouts_per_prompt=16,
        minibatch_size=256,
        micro_batch_size=32,
        iterations=150,
        eval_prompts=4096,
        lrs=(2e-5, 5e-5, 1e-4),  # a guess for 25 M parameters: the sweep decides
        workers=1,
    )
    if quick:
        config = dataclasses.replace(
            config, seeds=(0, 1), sweep_seeds=(100,), lrs=(5e-5,), iterations=20
        )
    if warm_start_steps is not None:
        config = dataclasses.replace(config, warm_start_steps=warm_start_steps)
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trl_study_gpu.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/trl_study_gpu"))
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20 generation batches")
    parser.add_argument("--no-vllm", action="store_true", help="generate with transformers")
    parser.add_argument(
        "--warm-start-steps",
        type=int,
        help="supervised steps (default 60); aim the warm start at about half the ceiling",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU (the CPU study is benchmarks/trl_study.py)")
    use_vllm = not args.no_vllm and importlib.util.find_spec("vllm") is not None
    config = gpu_config(use_vllm=use_vllm, quick=args.quick, warm_start_steps=args.warm_start_steps)
    print(
        f"trl_study_gpu: {torch.cuda.get_device_name()}, vLLM {'on' if use_vllm else 'off'}",
        file=sys.stderr,
    )
    results = study.run(config, args.out)
    summary = report.write_report(results, args.out)
    print(report.format_report(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
