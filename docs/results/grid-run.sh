#!/usr/bin/env bash
# The locomotion grid's runs (docs/results.md). Runs checkpoint every 5,000 updates and the same call resumes
# them (finished runs are skipped); while a call runs, and when it ends, the runs' progress.csv, config.json and
# d3rlpy.json are copied into docs/results/grid-SUITE/runs every minute.
#
#   grid-run.sh trajdiff SUITE METHOD...   Diffusion-QL and trajdiff methods: one process, 5 seeds as members
#                                          (a batch per method), compiled once, one thread
#   grid-run.sh baselines SUITE [METHOD...]  d3rlpy's baselines (default: td3+bc iql), one seed after another,
#                                          at nice 10
#
# RUNS (default /work/runs) holds datasets-d4rl/ (trajdiff collect suite) and grid/; CODE (default: this checkout)
# is the code that runs, with its virtualenv in VENV (default CODE/.venv) and d3rlpy's in CODE/.venv-baselines
# (make baselines-env).
set -eu
DOCS=$(cd "$(dirname "$0")" && pwd)
CODE=${CODE:-$(cd "$DOCS/../.." && pwd)}
VENV=${VENV:-$CODE/.venv}
RUNS=${RUNS:-/work/runs}
KIND=$1 SUITE=$2
shift 2
cd "$RUNS"
export PYTHONPATH=$CODE OMP_NUM_THREADS=1
bench() { nice -n "${NICE:-0}" "$VENV/bin/python" -m trajdiff.cli bench --suite "$SUITE" --budget cpu-50k --device cpu \
  --data-dir datasets-d4rl --out "grid/$SUITE" "$@"; }
copy_progress() {
  (cd "grid/$SUITE" && find runs \( -name progress.csv -o -name config.json -o -name d3rlpy.json \) \
    -exec cp --parents {} "$DOCS/grid-$SUITE" \;)
}
copying() {  # run "$@" in the background, copying the progress every minute and at its end; its exit status
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2> /dev/null; do sleep 60; copy_progress; done
  wait "$pid"
  copy_progress
}
mkdir -p "$DOCS/grid-$SUITE"
case $KIND in
  trajdiff)
    echo "$(date -u) $SUITE $*"
    copying bench --methods "$@" --compile-update ;;
  baselines)
    [ $# -gt 0 ] || set -- td3+bc iql
    echo "$(date -u) $SUITE $*"
    NICE=10 copying bench --methods "$@" --baselines-python "$CODE/.venv-baselines/bin/python" ;;
  *) echo "grid-run.sh trajdiff SUITE METHOD... | baselines SUITE [METHOD...]" >&2; exit 2 ;;
esac
echo "$(date -u) $SUITE $KIND done"
