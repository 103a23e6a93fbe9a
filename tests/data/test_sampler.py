import numpy as np
import torch
from scipy.stats import chisquare

from trajdiff.agent import AgentConfig
from trajdiff.data import TrajectorySampler, WindowBatch


def one_member(batch: WindowBatch) -> WindowBatch:
    """The batch of a one-member sampler without its leading member dimension."""
    return WindowBatch(**{field: getattr(batch, field)[0] for field in WindowBatch.__dataclass_fields__})


def test_history_windows_padding_and_boundaries(small_dataset):
    sampler = TrajectorySampler(small_dataset, [AgentConfig(history_len=3, discount=0.9)], [0])
    batch = one_member(sampler.windows(np.arange(small_dataset.num_transitions)[None]))
    # observation row i holds the value i: episodes are [0..3], [4], [5..10], [11..13]
    expected_first_column = [0, 0, 0, 1, 0, 0, 0, 5, 6, 7, 8, 0, 0, 11]
    expected_mask = [[False, False, True], [False, True, True], [True, True, True], [True, True, True],
                     [False, False, True], [False, False, True], [False, True, True]]
    np.testing.assert_array_equal(batch.history[:, 0, 0].numpy(), expected_first_column)
    np.testing.assert_array_equal(batch.history_mask[:7].numpy(), expected_mask)
    np.testing.assert_array_equal(batch.history[:, -1, 0].numpy(), np.arange(14))
    # padded entries are zeros, real entries never come from another episode
    episode = small_dataset.episode_index
    for row, t in enumerate(range(small_dataset.num_transitions)):
        values = batch.history[row, :, 0][batch.history_mask[row]].numpy().astype(int)
        assert (episode[values] == episode[t]).all()
        assert (batch.history[row][~batch.history_mask[row]] == 0).all()


def test_bootstrap_window_ends_at_stored_next_observation(small_dataset):
    sampler = TrajectorySampler(small_dataset, [AgentConfig(history_len=2, n_step=3, discount=0.5)], [0])
    batch = one_member(sampler.windows(np.arange(small_dataset.num_transitions)[None]))
    # t=0: k=3 -> next_obs[2] = 2.5, preceded by obs 2; terminal episode end at 3 (k=3 < 4)
    # t=2: k=2 -> window ends on the terminal step 3: discount 0
    # t=5: episode [5..10] timeout: k=3 -> next_obs[7]; t=9: k=2 -> next_obs[10] and discount .25
    last = batch.bootstrap_history[:, 0, -1, 0].numpy()
    previous = batch.bootstrap_history[:, 0, 0, 0].numpy()
    discount = batch.bootstrap_weight[:, 0]
    assert last[0] == 2.5 and previous[0] == 2
    assert discount[2] == 0 and discount[0] == 0.125
    assert last[5] == 7.5 and discount[5] == 0.125
    assert last[9] == 10.5 and previous[9] == 10 and discount[9] == 0.25
    # the one-step episode 4 (timeout): bootstraps from its stored next obs, preceded by s_4 itself
    assert last[4] == 4.5 and previous[4] == 4 and discount[4] == 0.5
    # episode 2 starts at 5: the window after t=5 with n=1 would be [5, 5.5]; with n=3 at t=5 it is
    # [7, 7.5]; the window of the first step of the last episode (11) has no padding either
    assert batch.bootstrap_mask.all()
    short = one_member(TrajectorySampler(small_dataset, [AgentConfig(history_len=4, discount=0.5)], [0]).windows(
        np.array([[5]])))
    np.testing.assert_array_equal(short.bootstrap_history[0, 0, :, 0].numpy(), [0, 0, 5, 5.5])
    np.testing.assert_array_equal(short.bootstrap_mask[0, 0].numpy(), [False, False, True, True])


def test_one_step_one_history_is_plain_transition_sampling(small_dataset):
    sampler = TrajectorySampler(small_dataset, [AgentConfig()], [3])
    batch = one_member(sampler.draw(64))
    index = batch.indices.numpy()
    np.testing.assert_array_equal(batch.observations.numpy(), small_dataset.observations[index])
    np.testing.assert_array_equal(batch.actions.numpy(), small_dataset.actions[index])
    np.testing.assert_array_equal(batch.target_reward.numpy(), small_dataset.rewards[index])
    np.testing.assert_array_equal(batch.bootstrap_observations[:, 0].numpy(), small_dataset.next_observations[index])
    np.testing.assert_allclose(batch.bootstrap_weight[:, 0].numpy(), 0.99 * ~small_dataset.terminals[index])
    assert batch.history_mask.all() and batch.bootstrap_mask.all() and batch.action_mask.all()


def test_every_step_reachable_and_uniform(small_dataset):
    sampler = TrajectorySampler(small_dataset, [AgentConfig(history_len=4, n_step=5, discount=0.9)], [0])
    counts = np.zeros(small_dataset.num_transitions)
    for _ in range(50):
        np.add.at(counts, sampler.draw(1000).indices[0].numpy(), 1)
    assert (counts > 0).all()
    assert chisquare(counts).pvalue > 0.01


def test_same_seed_same_batches(small_dataset):
    first = TrajectorySampler(small_dataset, [AgentConfig(history_len=2, n_step=2, discount=0.9)], [7]).draw(32)
    second = TrajectorySampler(small_dataset, [AgentConfig(history_len=2, n_step=2, discount=0.9)], [7]).draw(32)
    assert torch.equal(first.indices, second.indices)


def test_members_differ_in_n_step_and_draw_their_own_steps(small_dataset):
    """Member 1 (n=3) beside member 0 (n=1): each gets its own targets, and its own steps by its own seed."""
    members = [AgentConfig(history_len=2, discount=0.5), AgentConfig(history_len=2, n_step=3, discount=0.5)]
    sampler = TrajectorySampler(small_dataset, members, [4, 9])
    batch = sampler.windows(np.array([[0, 5], [0, 5]]))
    # t=0 of episode [0..3]: n=1 bootstraps from next_obs[0] = 0.5; n=3 from next_obs[2] = 2.5
    assert batch.bootstrap_history[0, 0, 0, -1, 0] == 0.5 and batch.bootstrap_history[1, 0, 0, -1, 0] == 2.5
    assert batch.bootstrap_weight[:, 0, 0].tolist() == [0.5, 0.125]
    rewards = small_dataset.rewards
    np.testing.assert_allclose(batch.target_reward[1, 1].item(), rewards[5] + 0.5 * rewards[6] + 0.25 * rewards[7],
                               rtol=1e-6)
    alone = TrajectorySampler(small_dataset, [AgentConfig(history_len=2, n_step=3, discount=0.5)], [9]).draw(16)
    assert torch.equal(sampler.draw(16).indices[1], alone.indices[0])


def test_action_chunks_stop_at_the_episode_end(small_dataset):
    """Chunks of 3 logged actions: past an episode's end the last action repeats and the mask is False; the
    chunk's target is the 3-step one (no bootstrap after the terminal at 3, a full one where the timeout at 10 cut)."""
    sampler = TrajectorySampler(small_dataset, [AgentConfig(n_step=3, action_chunk=3, discount=0.5)], [0])
    batch = one_member(sampler.windows(np.arange(small_dataset.num_transitions)[None]))
    chunks = batch.actions.view(-1, 3, 2).numpy()
    for start, end in zip(small_dataset.episode_starts, small_dataset.episode_ends):
        for t in range(start, end):
            held = [t + i < end for i in range(3)]
            np.testing.assert_array_equal(batch.action_mask[t].numpy(), held)
            np.testing.assert_array_equal(chunks[t], small_dataset.actions[[min(t + i, end - 1) for i in range(3)]])
    assert batch.bootstrap_weight[2, 0] == 0 and batch.bootstrap_weight[0, 0] == 0.125
    assert batch.bootstrap_history[9, 0, -1, 0] == 10.5 and batch.bootstrap_weight[9, 0] == 0.25


def test_lambda_windows_end_at_each_next_state(small_dataset):
    """lambda-returns value the n next states: window j ends at next_observations[t + min(j, k) - 1]; a member with
    a shorter n beside a longer one has zero-weight columns past its own n."""
    members = [AgentConfig(history_len=2, n_step=n, discount=0.5, critic_target="lambda") for n in (3, 2)]
    sampler = TrajectorySampler(small_dataset, members, [0, 1])
    batch = sampler.windows(np.tile(np.arange(small_dataset.num_transitions), (2, 1)))
    ends = np.repeat(small_dataset.episode_ends, small_dataset.episode_lengths)
    for member, n_step in enumerate((3, 2)):
        for t in range(small_dataset.num_transitions):
            k = min(n_step, ends[t] - t)
            for j in range(3):
                expected = t + min(j + 1, k) - 1 + 0.5
                assert batch.bootstrap_history[member, t, j, -1, 0] == expected
                assert batch.bootstrap_history[member, t, j, 0, 0] == expected - 0.5  # preceded by its state
            assert (batch.bootstrap_weight[member, t, k:] == 0).all()
    # t=0 of member 0 (k=3, lambda .5, gamma .5): V(s1) .25, V(s2) .0625, V(s3) .03125
    np.testing.assert_allclose(batch.bootstrap_weight[0, 0].numpy(), [0.25, 0.0625, 0.03125])
