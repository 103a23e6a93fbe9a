import torch
import torch.nn.functional as F

from trajdiff.nets.mlp import Mish


def test_mish_matches_pytorch_forward_and_gradient():
    """The exp form against F.mish in float64, across the clamp at 20 and far into both tails."""
    points = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor([19.99, 20.0, 20.01, 1e4, -1e4, 0.0])])
    x = points.clone().requires_grad_()
    reference_x = points.double().requires_grad_()
    output, reference = Mish()(x), F.mish(reference_x)
    output.backward(torch.ones_like(output))
    reference.backward(torch.ones_like(reference))
    torch.testing.assert_close(output.double(), reference.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), reference_x.grad, rtol=1e-5, atol=1e-5)


def test_mish_gradient_is_exact_in_double():
    x = torch.linspace(-6, 6, 41, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(Mish(), (x,))
