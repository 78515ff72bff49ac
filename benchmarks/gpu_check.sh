#!/usr/bin/env bash
# GPU checks and timings, for a machine with one NVIDIA GPU whose python3 already has
# torch, jax (CUDA), scipy, pytest and hypothesis. Writes logs and JSON under ${OUT:-gpu-out}.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, jax; print('torch', torch.__version__, torch.cuda.get_device_name(0)); print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
# 1. The adapter on CUDA tensors (device, core, plan and loss tests) and JAX alias draws on the GPU.
python3 -m pytest -q -p no:cacheprovider -o addopts="" -o filterwarnings=default \
  tests/test_torch_devices.py tests/test_torch.py tests/test_torch_plan.py tests/test_torch_loss.py tests/test_draw.py \
  2>&1 | tee "$OUT/torch_tests.log" | tail -3
# 2. Adapter overhead vs a policy-gradient step, on the GPU.
python3 benchmarks/bench_torch_adapter.py --device cuda --out "$OUT/adapter_cuda.json" 2>&1 | tee "$OUT/adapter_cuda.log" | tail -15
# 3. The JAX engine on the GPU: the full 1000-trial Figure 2 configuration.
python3 benchmarks/bench_sgd.py --repeats 3 --out "$OUT/sgd_gpu.json" 2>&1 | tee "$OUT/sgd_gpu.log" | tail -15
