#!/usr/bin/env bash
# Peak RSS at K = 8 with one configuration per process (as a training run holds one), old main (65508d3)
# against the tree: two rounds, each history 1 then 8, old / sampled eager / sampled compiled /
# approximated compiled. /tmp/old: git worktree add /tmp/old 65508d3
set -u
cd "$(dirname "$0")/../../../.."  # the repository root
HERE=docs/results/throughput-cheaper-updates/memory-one-config
OUT=${OUT:-runs/bench-memory-one-config}; mkdir -p "$OUT"
for r in 1 2; do for h in 1 8; do
  PYTHONPATH=/tmp/old .venv/bin/python $HERE/old_one_config.py $h > $OUT/old-h$h-r$r.txt 2>&1
  for qm in "sampled eager" "sampled compiled" "approximated compiled"; do set -- $qm
    .venv/bin/python benchmarks/throughput.py --devices cpu --seconds 5 --members 8 --histories $h \
      --q-actions $1 --modes $2 > $OUT/new-h$h-$1-$2-r$r.txt 2>&1
  done
done; done
echo done > $OUT/DONE
