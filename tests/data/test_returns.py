import numpy as np
import pytest

from tests.conftest import make_arrays
from trajdiff.data import EpisodeDataset
from trajdiff.data.returns import bootstrap_targets, discounted_returns_to_go, last_state


def brute_force(dataset: EpisodeDataset, n_step: int, discount: float):
    """The obvious per-step loop."""
    returns, last, discounts = [], [], []
    for start, end in zip(dataset.episode_starts, dataset.episode_ends):
        for t in range(start, end):
            total, k = 0.0, 0
            while k < n_step and t + k < end:
                total += discount**k * dataset.rewards[t + k]
                k += 1
            returns.append(total)
            last.append(t + k - 1)
            terminal = t + k == end and dataset.terminals[end - 1]
            discounts.append(0.0 if terminal else discount**k)
    return np.array(returns), np.array(last), np.array(discounts)


def targets(dataset: EpisodeDataset, n_step: int, discount: float):
    """The n-step form: lambda 1, the last state's column."""
    reward, last, weight = bootstrap_targets(dataset.rewards, dataset.terminals, dataset.episode_ends,
                                             dataset.episode_lengths, n_step, discount)
    last, weight = last_state(last, weight)
    return reward, last[:, 0], weight[:, 0]


def test_hand_computed_across_terminal_and_timeout():
    arrays = make_arrays([3, 2], ["terminal", "timeout"])
    arrays["rewards"] = np.array([1, 2, 4, 8, 16], np.float32)
    dataset = EpisodeDataset.from_arrays(arrays)
    returns, last, discounts = targets(dataset, n_step=2, discount=0.5)
    # episode 1 (terminal at 2): t0 = 1 + .5*2, t1 = 2 + .5*4 (ends on terminal), t2 = 4 (terminal)
    # episode 2 (timeout at 4): t3 = 8 + .5*16 (bootstrap .25 after the timeout), t4 = 16
    np.testing.assert_allclose(returns, [2, 4, 4, 16, 16])
    np.testing.assert_array_equal(last, [1, 2, 2, 4, 4])
    np.testing.assert_allclose(discounts, [0.25, 0.0, 0.0, 0.25, 0.5])


@pytest.mark.parametrize("n_step", [1, 2, 3, 5, 10])
def test_matches_brute_force(small_dataset, n_step):
    expected = brute_force(small_dataset, n_step, 0.9)
    for got, want in zip(targets(small_dataset, n_step, 0.9), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_one_step_is_plain_td_target(small_dataset):
    returns, last, discounts = targets(small_dataset, 1, 0.99)
    np.testing.assert_array_equal(returns, small_dataset.rewards)
    np.testing.assert_array_equal(last, np.arange(small_dataset.num_transitions))
    np.testing.assert_allclose(discounts, 0.99 * ~small_dataset.terminals)


def test_returns_to_go_hand_computed_and_stop_at_every_episode_end():
    arrays = make_arrays([3, 2], ["terminal", "timeout"])
    arrays["rewards"] = np.array([1, 2, 4, 8, 16], np.float32)
    dataset = EpisodeDataset.from_arrays(arrays)
    got = discounted_returns_to_go(dataset.rewards, dataset.episode_ends, dataset.episode_lengths, 0.5)
    # episode 1: 1 + .5*2 + .25*4, 2 + .5*4, 4; episode 2 (cut by its timeout, nothing bootstrapped): 8 + .5*16, 16
    np.testing.assert_allclose(got, [3, 4, 4, 16, 16])


def test_returns_to_go_are_the_unbounded_n_step_returns(small_dataset):
    longest = int(small_dataset.episode_lengths.max())
    want = brute_force(small_dataset, longest, 0.9)[0]
    got = discounted_returns_to_go(small_dataset.rewards, small_dataset.episode_ends,
                                   small_dataset.episode_lengths, 0.9)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def lambda_return_by_recursion(dataset: EpisodeDataset, n_step: int, discount: float, td_lambda: float,
                               values: np.ndarray) -> np.ndarray:
    """y_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda y_{t+1}], y_{t+k} = V(s_{t+k}) (0 after a terminal), run
    backwards step by step; values[i] is V of next_observations[i]."""
    targets = []
    for start, end in zip(dataset.episode_starts, dataset.episode_ends):
        for t in range(start, end):
            k = min(n_step, end - t)
            last = t + k - 1
            following = 0.0 if last == end - 1 and dataset.terminals[last] else values[last]
            for step in range(last, t - 1, -1):
                if step < last:
                    following = (1 - td_lambda) * values[step] + td_lambda * following
                following = dataset.rewards[step] + discount * following
            targets.append(following)
    return np.array(targets)


def lambda_targets(dataset: EpisodeDataset, n_step: int, discount: float, td_lambda: float, values: np.ndarray):
    reward, last, weight = bootstrap_targets(dataset.rewards, dataset.terminals, dataset.episode_ends,
                                             dataset.episode_lengths, n_step, discount, td_lambda)
    return reward + (weight * values[last]).sum(axis=1)


@pytest.mark.parametrize("n_step", [1, 2, 3, 5])
@pytest.mark.parametrize("td_lambda", [0.0, 0.3, 0.9, 1.0])
def test_lambda_returns_match_the_recursion(small_dataset, n_step, td_lambda):
    """small_dataset has a terminal inside a 5-step window, a one-step episode and time-limit cuts."""
    values = np.random.default_rng(n_step).normal(size=small_dataset.num_transitions) * 10
    np.testing.assert_allclose(lambda_targets(small_dataset, n_step, 0.9, td_lambda, values),
                               lambda_return_by_recursion(small_dataset, n_step, 0.9, td_lambda, values), rtol=1e-5)


def test_lambda_returns_hand_computed_across_terminal_and_timeout():
    arrays = make_arrays([3, 2], ["terminal", "timeout"])
    arrays["rewards"] = np.array([1, 2, 4, 8, 16], np.float32)
    dataset = EpisodeDataset.from_arrays(arrays)
    reward, last, weight = bootstrap_targets(dataset.rewards, dataset.terminals, dataset.episode_ends,
                                             dataset.episode_lengths, n_step=2, discount=0.5, td_lambda=0.5)
    # t0: r0 + .25 r1, V(s1) weighs .5 * (1 - .5), V(s2) .25 * .5; t1: ends on the terminal, V(s2) only, and 0;
    # t3: cut by the timeout after 2 steps: V(s4) weighs .25 * .5, then bootstraps V(s5) in full at .25 * .5;
    # t4: one step left, cut: V(s5) weighs .5, the padding column 0
    np.testing.assert_allclose(reward, [1 + 0.25 * 2, 2 + 0.25 * 4, 4, 8 + 0.25 * 16, 16])
    np.testing.assert_array_equal(last, [[0, 1], [1, 2], [2, 2], [3, 4], [4, 4]])
    np.testing.assert_allclose(weight, [[0.25, 0.125], [0.25, 0.0], [0.0, 0.0], [0.25, 0.125], [0.5, 0.0]])


def test_lambda_one_is_the_n_step_target_and_lambda_zero_the_one_step_target(small_dataset):
    values = np.random.default_rng(0).normal(size=small_dataset.num_transitions)
    returns, last, discounts = targets(small_dataset, 3, 0.9)
    np.testing.assert_allclose(lambda_targets(small_dataset, 3, 0.9, 1.0, values), returns + discounts * values[last],
                               rtol=1e-6)
    returns, last, discounts = targets(small_dataset, 1, 0.9)
    np.testing.assert_allclose(lambda_targets(small_dataset, 3, 0.9, 0.0, values), returns + discounts * values[last],
                               rtol=1e-6)
