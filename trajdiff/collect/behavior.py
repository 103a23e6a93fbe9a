"""Train a SAC behaviour policy with stable-baselines3 and keep what D4RL's protocol needs.

A run folder holds, exactly like ``../shared/behavior/<env>/``:

- ``sac_<step>.zip``: full SB3 checkpoints every ``checkpoint_every`` environment steps;
- ``log.json``: a list of ``{step, ret_mean, ret_std, wall_s}``, one per checkpoint, the return
  of ``eval_episodes`` deterministic evaluation episodes;
- ``replay.npz``: every transition SAC collected, in collection order, with SB3's semantics
  (``dones`` true at every episode end, ``timeouts`` at the time-limit ones). medium-replay is
  cut from it.

Running the command again on the same folder with a larger ``--steps`` continues from the last
checkpoint (policy, optimiser, entropy coefficient and replay buffer), so a killed run loses at
most ``checkpoint_every`` steps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from trajdiff.errors import TrajdiffError
from trajdiff.evaluate import make_environment
from trajdiff.utils import atomic_write, atomic_write_json, library_versions


@dataclass(frozen=True)
class TrainBehaviorConfig:
    """Train a SAC behaviour policy (stable-baselines3 defaults) and save checkpoints + replay."""

    out: Path
    """Run folder to create (checkpoints, log.json, replay.npz)."""
    env: str = "Hopper-v5"
    """Gymnasium environment id."""
    steps: int = 100_000
    """Environment steps of SAC training."""
    checkpoint_every: int = 10_000
    """Save and evaluate a checkpoint every this many steps."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes per checkpoint."""
    learning_starts: int = 10_000
    """Random-action steps before SAC starts learning (the SB3 default)."""
    seed: int = 0
    """Seed of SAC and its environments."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"sac_{step}.zip"


def train_behavior(config: TrainBehaviorConfig) -> None:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    if config.steps < config.checkpoint_every:
        raise TrajdiffError("--steps must be at least --checkpoint-every (no checkpoint otherwise)")
    config.out.mkdir(parents=True, exist_ok=True)
    log_path = config.out / "log.json"
    log: list[dict[str, float]] = json.loads(log_path.read_text()) if log_path.is_file() else []
    log = [entry for entry in log if checkpoint_path(config.out, int(entry["step"])).is_file()]
    done_steps = int(log[-1]["step"]) if log else 0
    if done_steps >= config.steps:
        raise TrajdiffError(f"{config.out} already holds {done_steps} steps; ask for more with --steps")
    eval_env = Monitor(make_environment(config.env))
    start = time.time() - (log[-1]["wall_s"] if log else 0.0)

    class CheckpointCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = tqdm(total=config.steps, initial=done_steps, desc=f"SAC {config.env}", unit="step")

        def _on_step(self) -> bool:
            self.bar.update(1)
            if self.num_timesteps % config.checkpoint_every == 0:
                step = self.num_timesteps
                self.model.save(checkpoint_path(config.out, step))
                returns, _ = evaluate_policy(
                    self.model, eval_env, n_eval_episodes=config.eval_episodes,
                    deterministic=True, return_episode_rewards=True,
                )
                log.append({"step": step, "ret_mean": float(np.mean(returns)),
                            "ret_std": float(np.std(returns)), "wall_s": time.time() - start})
                atomic_write_json(log_path, log)
                save_replay(self.model.replay_buffer, config.out / "replay.npz")
                self.bar.set_postfix(eval_return=f"{log[-1]['ret_mean']:.0f}")
            return True

    torch.set_num_threads(1)  # SB3 SAC at batch 256 runs fastest single-threaded on small CPUs
    if done_steps:  # continue a run that was stopped, from its last checkpoint and replay
        model = SAC.load(checkpoint_path(config.out, done_steps), env=make_environment(config.env), device="cpu",
                         custom_objects={"buffer_size": config.steps})
        load_replay(model.replay_buffer, config.out / "replay.npz", done_steps)
    else:
        model = SAC("MlpPolicy", make_environment(config.env), buffer_size=config.steps,
                    learning_starts=config.learning_starts, seed=config.seed, device="cpu", verbose=0)
    eval_env.reset(seed=config.seed + 10_000 + done_steps)
    callback = CheckpointCallback()
    model.learn(total_timesteps=config.steps - done_steps, callback=callback, reset_num_timesteps=not done_steps)
    callback.bar.close()
    # SB3 calls the callback before storing the step's transition: save the complete replay now.
    save_replay(model.replay_buffer, config.out / "replay.npz")
    atomic_write_json(config.out / "run.json", {"env": config.env, "steps": config.steps,
                                                "seed": config.seed, "versions": library_versions()})
    print(json.dumps(log[-1]))


def load_replay(buffer, path: Path, steps: int) -> None:  # noqa: ANN001 - an SB3 ReplayBuffer
    """Refill a fresh SB3 buffer with the first ``steps`` saved transitions.

    The episode running at the checkpoint is cut there (training restarts from a reset), so its
    last stored step is marked a time-limit end: a truncation, as it really was.
    """
    replay = np.load(path)
    size = min(steps, len(replay["rewards"]))
    for key in ("observations", "next_observations", "actions", "rewards"):
        getattr(buffer, key)[:size, 0] = replay[key][:size]
    buffer.dones[:size, 0] = replay["dones"][:size]
    buffer.timeouts[:size, 0] = replay["timeouts"][:size]
    if size and not replay["dones"][size - 1]:
        buffer.dones[size - 1, 0] = buffer.timeouts[size - 1, 0] = True
    buffer.pos = size


def save_replay(buffer, path: Path) -> None:  # noqa: ANN001 - an SB3 ReplayBuffer
    """Save the first ``buffer.pos`` transitions of a single-env SB3 replay buffer, in order."""
    size = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {
        "observations": buffer.observations[:size, 0],
        "next_observations": buffer.next_observations[:size, 0],
        "actions": buffer.actions[:size, 0],
        "rewards": buffer.rewards[:size, 0],
        "dones": buffer.dones[:size, 0].astype(bool),
        "timeouts": buffer.timeouts[:size, 0].astype(bool),
    }
    atomic_write(path, lambda tmp: np.savez(tmp.open("wb"), **arrays))
