#!/usr/bin/env bash
# The locomotion grid's runs (docs/results.md), in 5,000-update parts that resume and skip finished parts; after
# each part the runs' progress.csv, config.json and d3rlpy.json are copied into docs/results/grid-SUITE/runs.
#
#   grid-run.sh trajdiff SUITE METHOD...   Diffusion-QL and trajdiff methods: one process, 5 seeds as members,
#                                          compiled updates, one thread
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
mkdir -p "$DOCS/grid-$SUITE"
case $KIND in
  trajdiff)
    for stop in 5000 10000 15000 20000 25000 30000 35000 40000 45000 50000; do
      echo "$(date -u) $SUITE $* to $stop"
      bench --methods "$@" --compile-update --stop-at "$stop"
      copy_progress
    done ;;
  baselines)
    [ $# -gt 0 ] || set -- td3+bc iql
    echo "$(date -u) $SUITE $*"
    NICE=10 bench --methods "$@" --baselines-python "$CODE/.venv-baselines/bin/python"
    copy_progress ;;
  *) echo "grid-run.sh trajdiff SUITE METHOD... | baselines SUITE [METHOD...]" >&2; exit 2 ;;
esac
echo "$(date -u) $SUITE $KIND done"
