import numpy as np
import torch

from tests.nets.test_members import generators, torch_gru
from trajdiff.evaluate import HistoryBuffer
from trajdiff.nets import HistoryEncoder


def test_history_len_one_is_the_state():
    encoder = HistoryEncoder(5, history_len=1, hidden_dim=8, layers=1, generators=generators(0))
    history = torch.randn(1, 4, 1, 5)
    assert torch.equal(encoder(history, torch.ones(1, 4, 1, dtype=torch.bool)), history[:, :, 0])
    assert not list(encoder.parameters())


def test_padding_does_not_change_the_context():
    torch.manual_seed(0)
    encoder = HistoryEncoder(5, history_len=6, hidden_dim=8, layers=1, generators=generators(0))
    real = torch.randn(3, 5)
    mask = torch.tensor([[[False, False, False, True, True, True]]])
    padded_zeros = torch.cat([torch.zeros(3, 5), real])[None, None]
    padded_garbage = torch.cat([100 * torch.randn(3, 5), real])[None, None]
    context = encoder(padded_zeros, mask)
    torch.testing.assert_close(context, encoder(padded_garbage, mask))
    # and equals the GRU run on the three real steps alone
    outputs, _ = torch_gru(encoder.gru, 0)(real[None])
    torch.testing.assert_close(context[0], torch.cat([real[-1:], outputs[:, -1]], dim=-1))


def test_rows_with_different_padding_in_one_batch():
    torch.manual_seed(1)
    encoder = HistoryEncoder(2, history_len=4, hidden_dim=3, layers=1, generators=generators(1, 2))
    history = torch.randn(2, 4, 4, 2)
    mask = torch.tensor([[i >= 4 - length for i in range(4)] for length in (1, 2, 3, 4)]).expand(2, 4, 4)
    batch_context = encoder(history, mask)
    for member in range(2):
        for row, length in enumerate((1, 2, 3, 4)):
            outputs, _ = torch_gru(encoder.gru, member)(history[member, row:row + 1, 4 - length:])
            torch.testing.assert_close(batch_context[member, row, 2:], outputs[0, -1])


def test_rollout_history_resets_per_episode():
    buffer = HistoryBuffer(num_envs=2, history_len=3, observation_dim=1, device=torch.device("cpu"))
    buffer.reset(np.array([True, True]), torch.tensor([[1.0], [10.0]]))
    buffer.push(torch.tensor([[2.0], [11.0]]))
    buffer.push(torch.tensor([[3.0], [12.0]]))
    buffer.push(torch.tensor([[4.0], [0.0]]))
    buffer.reset(np.array([False, True]), torch.tensor([[4.0], [0.0]]))  # env 1 starts a new episode
    assert buffer.history[0, :, 0].tolist() == [2.0, 3.0, 4.0] and buffer.mask[0].all()
    assert buffer.history[1, :, 0].tolist() == [0.0, 0.0, 0.0]
    assert buffer.mask[1].tolist() == [False, False, True]


def test_frame_stack_is_the_masked_window_flattened():
    encoder = HistoryEncoder(2, history_len=3, hidden_dim=8, layers=1, generators=generators(0), kind="frames")
    history = torch.arange(12.0).view(1, 2, 3, 2)  # (K, B, H, Do)
    mask = torch.tensor([[[False, True, True], [True, True, True]]])
    context = encoder(history, mask)
    assert encoder.output_dim == 6 and not list(encoder.parameters())
    torch.testing.assert_close(context[0, 0], torch.tensor([0.0, 0.0, 2.0, 3.0, 4.0, 5.0]))  # padding zeroed
    torch.testing.assert_close(context[0, 1], torch.arange(6.0, 12.0))
