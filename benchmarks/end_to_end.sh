#!/usr/bin/env bash
# End-to-end timings of the engine, as docs/benchmarks.md quotes them: the engine
# benchmark twice (with the persistent-cache check), then `make demo` three times
# after emptying costsgd's per-user compile cache (JAX's programs; the native step
# loop, built by `make venv`, stays), then Figure 6's default once.
# Run from the repository root after `make venv`, on an otherwise idle machine.
# Usage: bash benchmarks/end_to_end.sh [OUTDIR]   (default: a new temporary folder)
set -euo pipefail
out=${1:-$(mktemp -d -t costsgd_e2e_XXXX)}
mkdir -p "$out"
seconds() { local s e; s=$(date +%s.%N); "$@" >>"$out/log.txt" 2>&1; e=$(date +%s.%N); python3 -c "print(f'{$e - $s:.2f}')"; }
echo "commit $(git rev-parse --short HEAD); $(uptime)"
for i in 1 2; do
  .venv/bin/python benchmarks/bench_sgd.py --cache --out "$out/bench$i.json" | tail -14
done
rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/costsgd/jax"
for i in 1 2 3; do echo "make demo $i: $(seconds make -s demo) s"; done
echo "figure6 (first run of its shapes): $(seconds .venv/bin/costsgd figure6 --out "$out/figure6") s"
echo "$(uptime); outputs in $out"
