"""trajdiff export: the program gives the agent's actions without trajdiff, and runs episodes by itself."""

import json
import subprocess
import sys

import pytest
import torch

from tests.commands.test_train import COMMON
from trajdiff.agent import select_actions
from trajdiff.cli import main
from trajdiff.run_folder import SavedRun

LOAD_AND_ACT = """
import sys, torch
program = torch.export.load(sys.argv[1]).module()
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    torch.save(program(inputs["history"], inputs["mask"], inputs["noise"], inputs["uniform"]), sys.argv[3])
assert "trajdiff" not in sys.modules
"""


@pytest.mark.parametrize("chunk", [1, 3])
def test_exported_policy_matches_the_agent_and_runs_episodes(tmp_path, hopper_file, capsys, chunk):
    run, out = tmp_path / "run", tmp_path / "export"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--history-len", "3", "--seeds", "1", "2", "--out", str(run), "--action-chunk", str(chunk),
          "--n-step", str(chunk), *COMMON])
    main(["export", str(run), "--member", "1", "--out", str(out)])
    spec = json.loads((out / "policy.json").read_text())
    assert spec["seed"] == 2 and spec["history_len"] == 3 and spec["env_id"] == "Hopper-v5"
    assert spec["action_chunk"] == chunk
    # the same history (one window partly padded), noise and uniform draws: the same actions as the agent's member
    generator = torch.Generator().manual_seed(0)
    envs, candidates = 4, spec["action_candidates"]
    history = torch.randn(envs, 3, 11, generator=generator)
    mask = torch.ones(envs, 3, dtype=torch.bool)
    mask[0, :2], history[0, :2] = False, 0.0
    noise = torch.randn(spec["diffusion_steps"], envs, candidates, chunk * 3, generator=generator)
    uniform = torch.rand(envs, 1, generator=generator)
    torch.save({"history": history, "mask": mask, "noise": noise, "uniform": uniform}, tmp_path / "inputs.pt")
    script = tmp_path / "load_and_act.py"
    script.write_text(LOAD_AND_ACT)
    subprocess.run([sys.executable, str(script), str(out / "policy.pt2"), str(tmp_path / "inputs.pt"),
                    str(tmp_path / "actions.pt")], check=True, cwd=tmp_path)
    agent, _ = SavedRun.read(run).agent(torch.device("cpu"))
    member = slice(1, 2)
    expected = select_actions(agent.actor, agent.critic_target, history[None].expand(2, -1, -1, -1),
                              mask[None].expand(2, -1, -1),
                              noise.reshape(noise.shape[0], 1, envs * candidates, chunk * 3).expand(-1, 2, -1, -1),
                              uniform[None].expand(2, -1, -1), candidates)[0][member][0].view(envs, chunk, 3)
    torch.testing.assert_close(torch.load(tmp_path / "actions.pt"), expected, rtol=1e-5, atol=1e-5)
    # the reference script keeps the history itself and plays whole episodes
    played = subprocess.run([sys.executable, str(out / "run_policy.py"), "--episodes", "2"], capture_output=True,
                            text=True, check=True, cwd=tmp_path)
    lines = [json.loads(line) for line in played.stdout.strip().splitlines()]
    assert [line["episode"] for line in lines[:2]] == [0, 1] and all(line["length"] > 0 for line in lines[:2])
    assert lines[-1] == {"imports_trajdiff": False}
