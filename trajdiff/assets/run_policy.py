"""Run a policy exported by `trajdiff export` in its Gymnasium environment, keeping its observation history.

Needs torch and gymnasium[mujoco] only (not trajdiff). Usage, in the export folder or with its path:
    python run_policy.py [--episodes 3] [--seed 0]
The program's inputs and shapes are described in policy.json; this file is the reference for keeping the
history between steps (a window of the last H observations, reset to the first observation of each episode) and
for playing the chosen chunk of actions open-loop (one action per step; a new chunk when it is played out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = json.loads((HERE / "policy.json").read_text())
    policy = torch.export.load(str(HERE / "policy.pt2")).module()
    env = gym.make(spec["env_id"])
    generator = torch.Generator().manual_seed(args.seed)
    horizon, observation_dim = spec["history_len"], spec["observation_dim"]
    columns = slice(*spec["observation_columns"])  # the entries the policy was trained to see (policy.json "observe")
    for episode in range(args.episodes):
        observation, _ = env.reset(seed=args.seed + episode)
        # a new episode: the window holds its first observation only, the rest is padding (mask False)
        history = torch.zeros(1, horizon, observation_dim)
        mask = torch.zeros(1, horizon, dtype=torch.bool)
        history[0, -1] = torch.as_tensor(observation[columns], dtype=torch.float32)
        mask[0, -1] = True
        total, steps, done, chunk = 0.0, 0, False, []
        while not done:
            if not chunk:  # the last chunk is played out (or the episode starts): choose the next one
                noise = torch.randn(spec["diffusion_steps"], 1, spec["action_candidates"],
                                    spec["action_chunk"] * spec["action_dim"], generator=generator)
                uniform = torch.rand(1, 1, generator=generator)
                with torch.no_grad():
                    chunk = list(policy(history, mask, noise, uniform)[0].numpy())
            action = chunk.pop(0)
            observation, reward, terminated, truncated, _ = env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
            # slide the window: drop the oldest observation, append the newest
            latest = torch.as_tensor(observation[columns], dtype=torch.float32)[None, None]
            history = torch.cat([history[:, 1:], latest], dim=1)
            mask = torch.cat([mask[:, 1:], torch.ones(1, 1, dtype=torch.bool)], dim=1)
        print(json.dumps({"episode": episode, "return": total, "length": steps}))
    print(json.dumps({"imports_trajdiff": "trajdiff" in sys.modules}))


if __name__ == "__main__":
    main()
