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
Writes DIR/policy-<updates>.pt for each save, DIR/checkpoint.pt beside it (d3rlpy's networks, optimisers and
learning-rate schedule, the update count and the random streams) and, once all updates are made, DIR/d3rlpy.json
(versions, config, training time, starts). Started again on DIR, it goes on from the checkpoint and makes what a
run without the interruption makes; --stop-at N ends a start after update N. --start JSON says what started it
(trajdiff's code commit, CPU, command): each start that saves a checkpoint is kept, with the update it began at.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import time
from pathlib import Path

import d3rlpy
import h5py
import numpy as np
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


def build(algorithm, dataset) -> None:  # noqa: ANN001
    """What d3rlpy's fit does before its first update, in its order (so with its random draws): fit the scalers
    to the dataset, then build the networks."""
    d3rlpy.algos.utility.build_scalers_with_transition_picker(algorithm, dataset)
    algorithm.build_with_dataset(dataset)


def save_checkpoint(path: Path, algorithm, identity: dict, done: int, train_s: float,  # noqa: ANN001
                    starts: list[dict]) -> None:
    """Networks, optimisers and schedule (d3rlpy's save_model), the update count, the starts so far and every
    random stream, written to a temporary file and renamed: a kill leaves the previous checkpoint whole."""
    model = io.BytesIO()
    algorithm.impl.save_model(model)
    state = {"identity": identity, "updates_done": done, "grad_step": algorithm.grad_step, "train_s": train_s,
             "starts": starts, "model": model.getvalue(), "numpy": np.random.get_state(), "python": random.getstate(),
             "torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def resume(path: Path, algorithm, identity: dict) -> tuple[int, float, list[dict]]:  # noqa: ANN001
    """Restore a checkpoint into the built ``algorithm``; (updates done, training seconds so far, starts)."""
    state = torch.load(path, weights_only=False)
    if state["identity"] != identity:
        raise SystemExit(f"{path} was written by another run ({state['identity']}), not {identity}")
    algorithm.impl.load_model(io.BytesIO(state["model"]))
    algorithm.set_grad_step(state["grad_step"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    return state["updates_done"], state["train_s"], state["starts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--algorithm", required=True)
    parser.add_argument("--updates", type=int, required=True)
    parser.add_argument("--save-every", type=int, required=True)
    parser.add_argument("--stop-at", type=int, help="end this start after this update (a multiple of --save-every)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu:0")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start", type=json.loads, help="what started this run, as a JSON object (kept in starts)")
    args = parser.parse_args()
    if args.stop_at is not None and args.stop_at % args.save_every:
        raise SystemExit(f"--stop-at {args.stop_at} is not a multiple of --save-every {args.save_every}")
    with h5py.File(args.dataset, "r") as handle:
        arrays = {key: handle[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    dataset = d3rlpy.dataset.MDPDataset(**arrays)
    d3rlpy.seed(args.seed)
    algorithm = make_config(args.algorithm, args.updates).create(device=args.device)
    build(algorithm, dataset)
    identity = {"algorithm": args.algorithm, "updates": args.updates, "save_every": args.save_every,
                "seed": args.seed, "dataset": args.dataset.name}
    checkpoint = args.out / "checkpoint.pt"
    done, train_s, starts = resume(checkpoint, algorithm, identity) if checkpoint.is_file() else (0, 0.0, [])
    starts = [*starts, {"at_update": done, **(args.start or {})}]
    stop = min(args.stop_at or args.updates, args.updates)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def save(algo, epoch: int, total_step: int) -> None:  # noqa: ANN001
        algo.save_policy(str(args.out / f"policy-{done + total_step}.pt"))
        save_checkpoint(checkpoint, algo, identity, done + total_step, train_s + time.time() - started, starts)

    if stop > done:
        algorithm.fit(dataset, n_steps=stop - done, n_steps_per_epoch=args.save_every, show_progress=False,
                      save_interval=10**9, logger_adapter=d3rlpy.logging.NoopAdapterFactory(), epoch_callback=save)
    if stop < args.updates:
        return
    saved = torch.load(checkpoint, weights_only=False)
    record = {"algorithm": args.algorithm, "updates": args.updates, "seed": args.seed, "train_s": saved["train_s"],
              "versions": {"d3rlpy": d3rlpy.__version__, "torch": torch.__version__},
              "config": json.loads(algorithm.config.serialize()), "starts": saved["starts"]}
    (args.out / "d3rlpy.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
