"""Train one d3rlpy baseline on a D4RL-layout hdf5 file, saving its policy every --save-every updates.

Runs as a script in the baselines' own virtualenv (`make baselines-env`): d3rlpy 2.8.1 pins
gymnasium 1.0.0, which trajdiff's pinned gymnasium 1.4.0 excludes, so this file imports nothing
from trajdiff. `trajdiff bench` starts it and evaluates the saved TorchScript policies (scalers
included) in trajdiff's own simulator (trajdiff/bench/baselines.py).

Configurations follow d3rlpy's D4RL reproduction scripts (reproductions/offline/*.py) except for
the number of updates, which is the bench budget's:
- bc: BCConfig with batch 256 (d3rlpy has no D4RL reproduction for BC; its default batch is 100).
- td3+bc: alpha 2.5, target smoothing 0.2/0.5, actor every 2 updates, standardised observations.
- iql: expectile 0.7, weight temperature 3, max weight 100, rewards scaled by 1000 / return range,
  cosine actor learning-rate decay over the whole budget.
- cql: 2 x 256 encoders, actor lr 1e-4, alpha lr 3e-4, initial alpha e, 10 action samples,
  alpha threshold 10, conservative weight 5 (the reproduction's value for all but medium-v0).

Usage: python d3rlpy_train.py DATA.hdf5 --algorithm iql --updates 10000 --save-every 2500 --seed 0 --out DIR
Writes DIR/policy-<updates>.pt for each save and DIR/d3rlpy.json (versions, config, wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import d3rlpy
import h5py
import torch


def make_config(name: str, updates: int):  # noqa: ANN201
    if name == "bc":
        return d3rlpy.algos.BCConfig(batch_size=256)
    if name == "td3+bc":
        return d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4, critic_learning_rate=3e-4, batch_size=256, target_smoothing_sigma=0.2,
            target_smoothing_clip=0.5, alpha=2.5, update_actor_interval=2,
            observation_scaler=d3rlpy.preprocessing.StandardObservationScaler())
    if name == "iql":
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4, critic_learning_rate=3e-4, batch_size=256, weight_temp=3.0,
            max_weight=100.0, expectile=0.7,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(
                lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=updates)),
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0))
    if name == "cql":
        encoder = d3rlpy.models.encoders.VectorEncoderFactory([256, 256])
        return d3rlpy.algos.CQLConfig(
            actor_learning_rate=1e-4, critic_learning_rate=3e-4, temp_learning_rate=1e-4,
            alpha_learning_rate=3e-4, initial_alpha=math.e, actor_encoder_factory=encoder,
            critic_encoder_factory=encoder, batch_size=256, n_action_samples=10, alpha_threshold=10,
            conservative_weight=5.0)
    raise SystemExit(f"unknown algorithm {name!r} (bc, td3+bc, iql, cql)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--algorithm", required=True)
    parser.add_argument("--updates", type=int, required=True)
    parser.add_argument("--save-every", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu:0")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with h5py.File(args.dataset, "r") as handle:
        arrays = {key: handle[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    dataset = d3rlpy.dataset.MDPDataset(**arrays)
    d3rlpy.seed(args.seed)
    algorithm = make_config(args.algorithm, args.updates).create(device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)

    def save(algo, epoch: int, total_step: int) -> None:  # noqa: ANN001
        algo.save_policy(str(args.out / f"policy-{total_step}.pt"))

    started = time.time()
    algorithm.fit(dataset, n_steps=args.updates, n_steps_per_epoch=args.save_every, show_progress=False,
                  save_interval=10**9, logger_adapter=d3rlpy.logging.NoopAdapterFactory(), epoch_callback=save)
    record = {"algorithm": args.algorithm, "updates": args.updates, "seed": args.seed, "train_s": time.time() - started,
              "versions": {"d3rlpy": d3rlpy.__version__, "torch": torch.__version__},
              "config": json.loads(algorithm.config.serialize())}
    (args.out / "d3rlpy.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
