import numpy as np
import pytest

from tests.conftest import make_arrays
from trajdiff.data import EpisodeDataset
from trajdiff.data.returns import discounted_returns_to_go, n_step_targets


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
    return n_step_targets(dataset.rewards, dataset.terminals, dataset.episode_ends,
                          dataset.episode_lengths, n_step, discount)


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
