"""Device-agnosticism, checked on a CPU: with PyTorch's default device set to ``meta`` while the agent lives on
the CPU, a tensor made without naming the agent's device is a meta tensor, and a torch function mode fails the
test at the first call that returns one (some operations would otherwise mix a meta tensor into a CPU result
without a word). An update, a vectorised evaluation, an export and a checkpoint round trip all run so: every
tensor they make is made on the agent's device (on CUDA, none would land on the CPU)."""

import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

import trajdiff
from tests.test_engine import build
from trajdiff.agent import state_leaves
from trajdiff.agent_state import load_member_states, member_state
from trajdiff.evaluate import EvaluationPlan, evaluate
from trajdiff.export import export_policy

CPU = torch.device("cpu")
CHECKED = (str(Path(trajdiff.__file__).resolve().parent), __file__)
"""Whose calls are checked: the package's, and this file's own (the premise test)."""


class MadeWithoutDevice(AssertionError):
    pass


class RefuseMetaTensors(TorchFunctionMode):
    """Fail at the first torch call from trajdiff's code (CHECKED) that returns a meta tensor, naming the call and
    the line. PyTorch's own calls (torch.export's tracing machinery) run with the CPU as their default device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        caller = sys._getframe(1)
        if not caller.f_code.co_filename.startswith(CHECKED):
            with torch.device("cpu"):
                return func(*args, **(kwargs or {}))
        result = func(*args, **(kwargs or {}))
        if any(isinstance(leaf, torch.Tensor) and leaf.is_meta for leaf in tree_leaves(result)):
            raise MadeWithoutDevice(f"{getattr(func, '__name__', func)} at {caller.f_code.co_filename}:"
                                    f"{caller.f_lineno} made a tensor without the agent's device")
        return result


@pytest.fixture
def meta_default():
    torch.set_default_device("meta")
    with RefuseMetaTensors():
        yield
    torch.set_default_device(None)


def test_a_tensor_made_without_a_device_fails(meta_default):
    """The premise: here a tensor made without a device fails where it is made, also where an operation would
    mix it into a CPU tensor silently (an in-place add, an index)."""
    for make in (lambda: torch.zeros(2), lambda: torch.ones(2, device=CPU).add_(torch.zeros(2)),
                 lambda: torch.ones(2, device=CPU)[torch.zeros(1, dtype=torch.long)], lambda: torch.tensor(1.0)):
        with pytest.raises(MadeWithoutDevice):
            make()
    assert torch.zeros(2, device=CPU).add_(torch.ones(2, device=CPU)).tolist() == [1.0, 1.0]


def test_every_tensor_is_made_on_the_agents_device(meta_default, tmp_path):
    engine = build(members=2, history_len=3, n_step=2, max_q_backup=True, lr_decay="cosine", critic_target="lambda")
    agent = engine.agent
    assert {tensor.device for tensor in state_leaves(agent.state_dict())} == {CPU}
    for _ in range(2):
        engine.update()
    means = engine.means()
    assert all(value.device == CPU and torch.isfinite(value).all() for value in means.values())
    results = evaluate(agent, "Hopper-v5", EvaluationPlan(2, [0, 1], max_envs=2, discounts=[0.99, 0.99]))
    assert all(len(result.returns) == 2 for result in results)
    program = export_policy(agent, member=1)
    actions = program.module()(torch.zeros(3, 3, 11, device=CPU), torch.ones(3, 3, dtype=torch.bool, device=CPU),
                               torch.randn(5, 3, 50, 3, device=CPU), torch.rand(3, 1, device=CPU))
    assert actions.shape == (3, 1, 3) and actions.device == CPU
    saved = [member_state(agent, k) for k in range(2)]
    torch.save(saved, tmp_path / "members.pt")
    twin = build(members=2, history_len=3, n_step=2, max_q_backup=True, lr_decay="cosine", critic_target="lambda").agent
    assert load_member_states(twin, torch.load(tmp_path / "members.pt", map_location=CPU, weights_only=False)) == []
    for mine, theirs in zip(agent.state_dict()["actor"].values(), twin.state_dict()["actor"].values()):
        assert torch.equal(mine, theirs)
    assert twin.updates_done() == 2
