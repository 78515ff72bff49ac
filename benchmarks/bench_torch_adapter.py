"""Per-update overhead of the torch adapter vs. the policy-gradient step it serves.

One rollout pool of N = 256 prompts x 16 rollouts (the paper's GRPO batch, Table 2), with GRPO
advantages broadcast over response tokens. Timed, side by side in one process (medians):

* adapter: Algorithm 2's Phase 2-3 for the pool -- p from token-level advantages and lengths,
  ceil(N/B) mini-batches of draws, importance weights, the logging summary, and the gather of
  the drawn rows (input ids and masks);
* uniform reference: what an ordinary loop does instead (a random permutation and the gather);
* policy-gradient step: forward + backward of a small causal LM (LlamaForCausalLM built from a
  config) over the same N rollouts, in micro-batches.

The ratio adapter / PG step is the number reported. The policy here is tiny, so the ratio
overstates the adapter's share for a real LLM.

    PYTHONPATH=. python benchmarks/bench_torch_adapter.py [--quick] [--device cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from costsgd.torch import plan_update
from tests.helpers import tiny_llama


def make_pool(n_prompts, n_rollouts, prompt_len, max_resp, vocab, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = n_prompts * n_rollouts
    resp_len = torch.clamp(
        torch.exp(torch.randn(n, generator=g) * 0.6 + math.log(max_resp / 3)), 1, max_resp
    ).long()
    L = prompt_len + max_resp
    ids = torch.randint(3, vocab, (n, L), generator=g)
    resp_mask = torch.arange(max_resp)[None] < resp_len[:, None]
    attn = torch.cat([torch.ones(n, prompt_len, dtype=torch.bool), resp_mask], 1)
    correct = (torch.rand(n, generator=g) < 0.4).float().view(n_prompts, n_rollouts)
    adv = (correct - correct.mean(1, keepdim=True)) / (correct.std(1, keepdim=True) + 1e-4)
    adv_tok = adv.reshape(-1, 1) * resp_mask
    pool = {"input_ids": ids, "attention_mask": attn.long(), "response_mask": resp_mask}
    pool = {k: v.to(device) for k, v in pool.items()}
    return pool, adv_tok.to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, repeats, device, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter sequences, fewer repeats")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--rollouts", type=int, default=16)
    ap.add_argument("--mini-batch-prompts", type=int, default=64)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads on CPU (default 1: on a loaded machine more threads made "
        "small ops 10-100x slower, distorting both sides)",
    )
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    prompt_len, max_resp = (16, 48) if args.quick else (64, 192)
    repeats_adapter, repeats_step = (20, 1) if args.quick else (50, 3)
    vocab, micro = 512, 256
    pool, adv_tok = make_pool(args.prompts, args.rollouts, prompt_len, max_resp, vocab, device)
    n = adv_tok.shape[0]
    B = args.mini_batch_prompts * args.rollouts
    lengths = pool["attention_mask"].sum(-1)
    gen = torch.Generator(device=device).manual_seed(0)

    def adapter():
        plan = plan_update(adv_tok, lengths, B, mask=pool["response_mask"], generator=gen)
        idx = plan.indices.reshape(-1)
        drawn = {k: v[idx] for k, v in pool.items()}
        return plan.summary(), drawn, plan.weights

    def uniform():
        idx = torch.randperm(n, generator=gen, device=device)
        return {k: v[idx] for k, v in pool.items()}

    model = tiny_llama(
        vocab,
        hidden_size=64,
        num_heads=4,
        max_positions=prompt_len + max_resp,
        special_tokens=False,
    ).to(device)

    def pg_step():
        model.zero_grad(set_to_none=True)
        for s in range(0, n, micro):
            ids = pool["input_ids"][s : s + micro]
            logits = model(
                input_ids=ids, attention_mask=pool["attention_mask"][s : s + micro]
            ).logits
            logp = torch.log_softmax(logits[:, prompt_len - 1 : -1].float(), -1)
            tok = logp.gather(-1, ids[:, prompt_len:, None])[..., 0]
            m = pool["response_mask"][s : s + micro].float()
            loss = -(adv_tok[s : s + micro] * tok * m).sum() / (m.sum() + 1e-9)
            loss.backward()

    t_adapter = median_time(adapter, repeats_adapter, device)
    t_uniform = median_time(uniform, repeats_adapter, device)
    t_step = median_time(pg_step, repeats_step, device, warmup=1)
    summary = adapter()[0]
    result = {
        "config": {
            "N": n,
            "mini_batch": B,
            "prompt_len": prompt_len,
            "max_response_len": max_resp,
            "policy": "LlamaForCausalLM hidden 64, 2 layers, vocab 512",
            "micro_batch": micro,
            "quick": args.quick,
            "repeats_adapter": repeats_adapter,
            "repeats_step": repeats_step,
        },
        "hardware": {
            "device": str(device),
            "name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "seconds": {"adapter": t_adapter, "uniform_shuffle": t_uniform, "pg_step": t_step},
        "ratio_adapter_over_pg_step": t_adapter / t_step,
        "ratio_uniform_over_pg_step": t_uniform / t_step,
        "plan_summary": summary,
    }
    hw = result["hardware"]
    print(f"hardware: {hw['device']} ({hw['name']}), {hw['cpu_count']} cpus, torch {hw['torch']}")
    print(f"N = {n} rollouts, mini-batch {B}, sequences {prompt_len}+<={max_resp} tokens")
    print(f"adapter (p, draws, weights, summary, gather): {t_adapter * 1e3:9.3f} ms (median)")
    print(f"uniform shuffle + gather (reference):         {t_uniform * 1e3:9.3f} ms (median)")
    print(f"policy forward+backward over the pool:        {t_step * 1e3:9.1f} ms (median)")
    print(f"adapter / PG step = {result['ratio_adapter_over_pg_step']:.2e}  (target < 1e-2)")
    print(
        f"tokens selected / pool = {summary['token_fraction']:.3f}, ESS fraction = "
        f"{summary['ess_fraction']:.3f}"
    )
    if args.out:
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=2)
        os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
