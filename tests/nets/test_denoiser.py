import torch
import torch.nn.functional as F

from trajdiff.nets import Denoiser


def generators(*seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def concatenated_denoiser(net: Denoiser, noisy_action, t, context):
    """Diffusion-QL's form, written out: the body over the concatenated [x_t, embedding(t), context]."""
    return net.body(torch.cat([noisy_action, net.time_embedding(t), context], dim=-1))


def test_conditioned_denoiser_equals_the_concatenated_layer():
    torch.manual_seed(0)
    net = Denoiser(action_dim=3, context_dim=11, steps=5, hidden_dim=32, generators=generators(0, 1))
    noisy_action, context = torch.randn(2, 64, 3), torch.randn(2, 64, 11)
    t = torch.randint(0, 5, (2, 64))
    reference = concatenated_denoiser(net, noisy_action, t, context)
    torch.testing.assert_close(net.condition(context)(noisy_action, t), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.condition(context)(noisy_action, t), reference, rtol=1e-5, atol=1e-6)


def test_one_int_step_equals_a_batch_of_that_step():
    torch.manual_seed(1)
    net = Denoiser(action_dim=2, context_dim=4, steps=5, hidden_dim=16, generators=generators(2, 3, 4))
    noisy_action, context = torch.randn(3, 8, 2), torch.randn(3, 8, 4)
    denoise = net.condition(context)
    for step in range(5):
        torch.testing.assert_close(denoise(noisy_action, step), denoise(noisy_action, torch.full((3, 8), step)))


def test_gradients_match_the_concatenated_layer():
    """The reverse chain reuses the context and time terms at every step: their gradients must add up."""
    torch.manual_seed(2)
    net = Denoiser(action_dim=3, context_dim=6, steps=5, hidden_dim=32, generators=generators(5))
    context = torch.randn(1, 16, 6, requires_grad=True)
    x = torch.randn(1, 16, 3)

    def chain(step_fn):
        y = x
        for step in reversed(range(5)):
            y = y - 0.1 * step_fn(y, step)
        return y.square().sum()

    gradients = []
    for step_fn in (net.condition(context),
                    lambda y, step: concatenated_denoiser(net, y, torch.full((1, 16), step), context)):
        net.zero_grad()
        context.grad = None
        chain(step_fn).backward()
        gradients.append([context.grad.clone()] + [p.grad.clone() for p in net.parameters()])
    for mine, reference in zip(*gradients):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)
    assert F.l1_loss(gradients[0][0], torch.zeros_like(context)) > 0  # not vacuous
