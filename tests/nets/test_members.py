"""Batched-weight layers: each member is an ordinary layer of its own seed."""

import torch
import torch.nn.functional as F
from torch import nn

from trajdiff.nets.members import MemberGRU, MemberLinear


def generators(*seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def torch_gru(member_gru: MemberGRU, member: int) -> nn.GRU:
    """nn.GRU holding member ``member``'s weights (nn.GRU stores them transposed, gates in the same order)."""
    layers = len(member_gru.input_weights)
    gru = nn.GRU(member_gru.input_weights[0].shape[1], member_gru.hidden_dim, num_layers=layers, batch_first=True)
    with torch.no_grad():
        for layer in range(layers):
            getattr(gru, f"weight_ih_l{layer}").copy_(member_gru.input_weights[layer][member].T)
            getattr(gru, f"weight_hh_l{layer}").copy_(member_gru.hidden_weights[layer][member].T)
            getattr(gru, f"bias_ih_l{layer}").copy_(member_gru.input_biases[layer][member, 0])
            getattr(gru, f"bias_hh_l{layer}").copy_(member_gru.hidden_biases[layer][member, 0])
    return gru


def test_linear_members_are_plain_linear_layers_of_their_seeds():
    layer = MemberLinear(5, 4, generators(3, 8))
    alone = MemberLinear(5, 4, generators(8))
    assert torch.equal(layer.weight[1], alone.weight[0]) and torch.equal(layer.bias[1], alone.bias[0])
    assert layer.weight.abs().max() <= 1 / 5**0.5  # nn.Linear's bound 1/sqrt(fan_in)
    x = torch.randn(2, 7, 5)
    for member in range(2):
        torch.testing.assert_close(layer(x)[member], F.linear(x[member], layer.weight[member].T, layer.bias[member, 0]))


def test_gru_members_equal_torch_gru():
    torch.manual_seed(0)
    gru = MemberGRU(input_dim=3, hidden_dim=6, layers=2, generators=generators(0, 1, 2))
    x = torch.randn(3, 4, 5, 3)  # (K, B, H, in)
    outputs = gru(x)
    for member in range(3):
        reference, _ = torch_gru(gru, member)(x[member])
        torch.testing.assert_close(outputs[member], reference, rtol=1e-5, atol=1e-6)


def test_gru_member_gradients_equal_torch_gru():
    gru = MemberGRU(input_dim=3, hidden_dim=6, layers=2, generators=generators(0, 1))
    x = torch.randn(2, 4, 5, 3, requires_grad=True)  # (K, B, H, in)
    gru(x).square().sum().backward()
    for member in range(2):
        reference = torch_gru(gru, member)
        x_member = x[member].detach().requires_grad_()
        reference(x_member)[0].square().sum().backward()
        torch.testing.assert_close(x.grad[member], x_member.grad, rtol=1e-5, atol=1e-6)
        for layer in range(2):
            torch.testing.assert_close(gru.input_weights[layer].grad[member],
                                       getattr(reference, f"weight_ih_l{layer}").grad.T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(gru.hidden_biases[layer].grad[member, 0],
                                       getattr(reference, f"bias_hh_l{layer}").grad, rtol=1e-5, atol=1e-6)
