"""Evaluation measures: Monte-Carlo returns, the states kept, Q accuracy and action change, by hand and in rollouts."""

import math

import numpy as np
import pytest
import torch

from trajdiff.envs import make_environment
from trajdiff.evaluate import EvaluationPlan, evaluate, evaluation_streams
from trajdiff.measures import EpisodeMeasures, discounted_returns, states_with_known_returns


def test_discounted_returns_by_hand():
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 1.0, 1.0]), 0.5), [1.75, 1.5, 1.0])
    np.testing.assert_allclose(discounted_returns(np.array([2.0, 0.0, 4.0]), 1.0), [6.0, 4.0, 4.0])


def test_states_kept_after_a_terminal_and_after_a_time_limit():
    assert states_with_known_returns(37, True, 0.99, 0.01) == 37
    # 0.99^459 <= 0.01 < 0.99^458: t is kept while 1000 - t >= 459, so t = 0..541
    assert 0.99**459 <= 0.01 < 0.99**458
    assert states_with_known_returns(1000, False, 0.99, 0.01) == 542
    assert states_with_known_returns(300, False, 0.99, 0.01) == 0
    assert states_with_known_returns(1000, False, 1.0, 0.01) == 0


def test_episode_measures_by_hand():
    measures = EpisodeMeasures(discount=0.5)
    rewards = np.array([1.0, 1.0, 1.0])  # returns 1.75, 1.5, 1
    measures.add(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]), rewards, np.array([2.75, 2.5, 2.0]), terminated=True)
    summary = measures.summary()
    assert summary["action_change"] == pytest.approx((0.5 + 2.0) / 2)  # per pair: mean over the two dimensions
    assert summary["q_bias"] == pytest.approx(1.0) and summary["q_correlation"] == pytest.approx(1.0)
    assert summary["q_states"] == 3
    # a time-limited episode too short to know any return adds its action changes and no states
    measures.add(np.array([[0.0, 0.0], [0.0, 1.0]]), np.array([5.0, 5.0]), np.array([0.0, 0.0]), terminated=False)
    summary = measures.summary()
    assert summary["action_change"] == pytest.approx((0.5 + 2.0 + 0.5) / 3) and summary["q_states"] == 3


def test_without_values_q_measures_are_nan():
    measures = EpisodeMeasures(discount=0.99)
    measures.add(np.zeros((4, 3)), np.ones(4), None, terminated=True)
    summary = measures.summary()
    assert summary["action_change"] == 0.0 and summary["q_states"] == 0
    assert math.isnan(summary["q_bias"]) and math.isnan(summary["q_correlation"])


def chunk_scales(chunk: int) -> np.ndarray:
    return np.float32(0.5) - np.float32(0.2) * np.arange(chunk, dtype=np.float32)


class ObservationPolicy:
    """A deterministic stand-in agent: the chunk's action i = clip((0.5 - 0.2 i) s_t[:3]), value = s_t[0] (a value
    that moves each step)."""

    members, history_len, device = 1, 1, torch.device("cpu")

    def __init__(self, action_chunk: int = 1) -> None:
        self.action_chunk = action_chunk

    def act(self, history, mask, random, deterministic=False):
        state = history[:, :, -1]
        scales = torch.as_tensor(chunk_scales(self.action_chunk))[:, None]
        return (scales * state[..., None, :3]).clamp(-1, 1), state[..., 0]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 3])
def test_evaluation_measures_match_a_rollout_by_hand(chunk):
    """With chunks, each is played open-loop and valued at its first state only."""
    discount, episodes = 0.9, 3
    result = evaluate(ObservationPolicy(chunk), "Hopper-v5", EvaluationPlan(episodes, [4], discounts=[discount]))[0]
    _, starts = evaluation_streams([4], 0, episodes, torch.device("cpu"))
    errors, values, returns, squared_change, changes = [], [], [], 0.0, 0
    for start in starts:
        env = make_environment("Hopper-v5")
        observation, _ = env.reset(seed=start)
        rewards, episode_values, actions, done, terminated = [], [], [], False, False
        while not done:
            played = len(actions) % chunk
            if played == 0:
                chosen = observation.astype(np.float32)  # what the agent sees (float32 histories)
            action = np.clip(chunk_scales(chunk)[played] * chosen[:3], -1, 1)
            episode_values.append(float(chosen[0]) if played == 0 else np.nan)
            actions.append(action)
            observation, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        env.close()
        assert terminated  # this policy falls: every return is exact and every state counts
        obtained = discounted_returns(np.array(rewards), discount)
        valued = np.isfinite(episode_values)
        errors += list(np.array(episode_values)[valued] - obtained[valued])
        values += list(np.array(episode_values)[valued])
        returns += list(obtained[valued])
        squared_change += float(np.square(np.diff(np.array(actions), axis=0)).mean(axis=1).sum())
        changes += len(actions) - 1
    assert result.measures["q_states"] == len(errors)
    assert result.measures["q_bias"] == pytest.approx(np.mean(errors), rel=1e-5)
    assert result.measures["q_correlation"] == pytest.approx(np.corrcoef(values, returns)[0, 1], rel=1e-5)
    assert result.measures["action_change"] == pytest.approx(squared_change / changes, rel=1e-5)
