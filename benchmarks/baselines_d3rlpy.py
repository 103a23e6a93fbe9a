"""Train d3rlpy baselines (BC, TD3+BC, IQL, CQL) on a trajdiff hdf5 file and export their policies.

Runs in its own virtualenv (`make baselines-env`): d3rlpy 2.8.1 pins gymnasium 1.0.0, which trajdiff's
pinned gymnasium 1.4.0 excludes. The policies are saved as TorchScript and evaluated by trajdiff's own
vectorised evaluation in the pinned simulator (benchmarks/evaluate_policies.py), so every method
faces the same environment. Each algorithm runs with d3rlpy 2.8.1's config defaults (batch 256,
the papers' learning rates and network sizes) and the same number of gradient updates as trajdiff;
the observation/reward scalers that d3rlpy's own D4RL reproduction scripts add (e.g. TD3+BC's
standard observation scaler) are not applied.

Usage: .venv-baselines/bin/python benchmarks/baselines_d3rlpy.py DATA.hdf5 --updates 10000 --out DIR
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import d3rlpy
import h5py
import numpy as np

ALGORITHMS = {
    "bc": lambda: d3rlpy.algos.BCConfig(compile_graph=False),
    "td3+bc": lambda: d3rlpy.algos.TD3PlusBCConfig(compile_graph=False),
    "iql": lambda: d3rlpy.algos.IQLConfig(compile_graph=False),
    "cql": lambda: d3rlpy.algos.CQLConfig(compile_graph=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with h5py.File(args.dataset, "r") as handle:
        arrays = {key: handle[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    dataset = d3rlpy.dataset.MDPDataset(**arrays)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"d3rlpy {d3rlpy.__version__} baselines on {args.dataset.name}, {args.updates:,} updates, seed {args.seed}")
    for name in args.algorithms:
        d3rlpy.seed(args.seed)
        algorithm = ALGORITHMS[name]().create(device="cpu:0")
        start = time.time()
        algorithm.fit(dataset, n_steps=args.updates, n_steps_per_epoch=args.updates, show_progress=False,
                      save_interval=10**9, logger_adapter=d3rlpy.logging.NoopAdapterFactory())
        policy = args.out / f"{name.replace('+', 'plus')}-seed{args.seed}.pt"
        algorithm.save_policy(str(policy))
        rows.append({"algorithm": name, "updates": args.updates, "seed": args.seed, "policy": str(policy),
                     "train_s": round(time.time() - start, 1)})
        print(f"{name:8} {rows[-1]['train_s']:>8.1f} s  -> {policy}")
    print(json.dumps({"benchmark": "baselines_d3rlpy", "d3rlpy": d3rlpy.__version__, "dataset": str(args.dataset),
                      "results": rows}))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
