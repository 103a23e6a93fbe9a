#!/usr/bin/env bash
# side-by-side: old main (65508d3) against the new tree, alternating, 3 rounds at K=5; then K=1/8 and memory
set -u
cd "$(dirname "$0")/../../.."  # the repository root; /tmp/old: git worktree add /tmp/old 65508d3
OUT=${OUT:-runs/bench-cheaper-updates}; mkdir -p "$OUT"
S=5
for r in 1 2 3; do
  PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/throughput.py --devices cpu --seconds $S --members 5 > $OUT/old-k5-r$r.txt 2>&1
  .venv/bin/python benchmarks/throughput.py --devices cpu --seconds $S --members 5 --q-actions sampled approximated --modes eager compiled > $OUT/new-k5-r$r.txt 2>&1
done
PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/throughput.py --devices cpu --seconds $S --members 1 > $OUT/old-k1.txt 2>&1
.venv/bin/python benchmarks/throughput.py --devices cpu --seconds $S --members 1 --q-actions sampled approximated --modes eager compiled > $OUT/new-k1.txt 2>&1
# K=8: one configuration set per process, so that each peak RSS is that process's
PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/throughput.py --devices cpu --seconds $S --members 8 > $OUT/old-k8.txt 2>&1
for q in sampled approximated; do for m in eager compiled; do
  .venv/bin/python benchmarks/throughput.py --devices cpu --seconds $S --members 8 --q-actions $q --modes $m > $OUT/new-k8-$q-$m.txt 2>&1
done; done
.venv/bin/python benchmarks/throughput.py --devices cpu --seconds $S --members 5 --q-actions sampled approximated --modes eager compiled --matmul-floor > $OUT/new-k5-floor.txt 2>&1
echo done > $OUT/DONE
