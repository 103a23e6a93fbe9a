#!/usr/bin/env bash
# second side-by-side run: old main (65508d3) against the tree (commit 20449ea), alternating, 4 rounds at K=5,
# compiled only (the exact update and the approximated one); then K=8, one process per row set, for peak memory
set -u
cd "$(dirname "$0")/../../../.."  # the repository root; /tmp/old: git worktree add /tmp/old 65508d3
OUT=${OUT:-runs/bench-cheaper-updates-2}; mkdir -p "$OUT"
for r in 1 2 3 4; do
  PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/throughput.py --devices cpu --seconds 5 --members 5 > $OUT/old-k5-r$r.txt 2>&1
  .venv/bin/python benchmarks/throughput.py --devices cpu --seconds 5 --members 5 --q-actions sampled approximated --modes compiled > $OUT/new-k5-r$r.txt 2>&1
done
PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/benchmarks/throughput.py --devices cpu --seconds 5 --members 8 > $OUT/old-k8.txt 2>&1
for q in sampled approximated; do for m in eager compiled; do
  .venv/bin/python benchmarks/throughput.py --devices cpu --seconds 5 --members 8 --q-actions $q --modes $m > $OUT/new-k8-$q-$m.txt 2>&1
done; done
echo done > $OUT/DONE
