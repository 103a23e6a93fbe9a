#!/bin/bash
# the cost of the multi-step targets side by side (benches paused): 3 rounds, K = 5, history 4 n-step 4
cd /work/main
out=/work/runs/ms-throughput
mkdir -p $out
for p in $(pgrep -f "trajdiff.cli bench"); do kill -STOP $p; done
for r in 1 2 3; do
  .venv/bin/python benchmarks/throughput.py --devices cpu --seconds 5 --members 5 --histories 4 \
    --targets nstep lambda chunk > $out/round$r.txt 2>&1
done
for p in $(pgrep -f "trajdiff.cli bench"); do kill -CONT $p; done
