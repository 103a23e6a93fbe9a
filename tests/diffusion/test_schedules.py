import math

import pytest
import torch

from trajdiff.diffusion import (
    NoiseSchedule,
    beta_schedule,
    ddpm_sample,
    noise_prediction,
    one_step_actions,
    prediction_error,
)


def test_vp_schedule_matches_closed_form():
    steps = 5
    betas = beta_schedule("vp", steps)
    for t in range(1, steps + 1):
        alpha = math.exp(-0.1 / steps - 0.5 * (10 - 0.1) * (2 * t - 1) / steps**2)
        assert betas[t - 1].item() == pytest.approx(1 - alpha, rel=1e-6)
    # the VP-SDE's marginal: abar_T = exp(-(beta_min + (beta_max - beta_min) / 2)) when discretised this way
    assert torch.prod(1 - betas).item() == pytest.approx(math.exp(-0.1 - 0.5 * 9.9), rel=1e-5)


@pytest.mark.parametrize("name", ["vp", "linear", "cosine"])
def test_schedules_are_valid(name):
    betas = beta_schedule(name, 20)
    assert betas.shape == (20,) and (betas > 0).all() and (betas < 1).all()


def test_linear_endpoints():
    betas = beta_schedule("linear", 10)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(2e-2)


def test_q_sample_and_inverse():
    schedule = NoiseSchedule("vp", 5)
    x0, noise = torch.randn(8, 3), torch.randn(8, 3)
    t = torch.arange(8) % 5
    x_t = schedule.q_sample(x0, t, noise)
    torch.testing.assert_close(schedule.predict_start_from_noise(x_t, t, noise), x0, rtol=1e-4, atol=1e-4)


def test_sampled_actions_within_bounds():
    schedule = NoiseSchedule("vp", 5)

    def wild_denoiser(x, t):
        return 100 * torch.randn_like(x)

    actions = ddpm_sample(wild_denoiser, schedule, torch.randn(5, 256, 3), max_action=0.7)
    assert actions.shape == (256, 3)
    assert actions.abs().max() <= 0.7


def test_perfect_denoiser_recovers_the_action():
    """A denoiser that knows x_0 gives back x_0: the reverse process is the exact posterior chain."""
    schedule = NoiseSchedule("vp", 5)
    target = torch.tensor([[0.3, -0.5]])

    def oracle(x, t):
        abar = schedule.alphas_cumprod[t]
        return (x - abar.sqrt() * target) / (1 - abar).sqrt()

    torch.testing.assert_close(ddpm_sample(oracle, schedule, torch.randn(5, 1, 2), 1.0), target)


def test_the_chain_uses_its_noise_in_order():
    """A zero denoiser: x_0 = x_T's rescaled mean chain plus each step's own noise, step by step."""
    schedule = NoiseSchedule("vp", 3)
    noise = torch.randn(3, 4, 2) * 0.1

    def zero(x, t):
        return torch.zeros_like(x)

    x = noise[0]
    for step, draw in zip((2, 1, 0), (noise[1], noise[2], None)):
        x0 = schedule.predict_start_from_noise(x, step, torch.zeros_like(x)).clamp(-1, 1)
        mean, log_variance = schedule.posterior(x0, x, step)
        x = mean + (0.5 * log_variance).exp() * draw if draw is not None else mean
    torch.testing.assert_close(ddpm_sample(zero, schedule, noise, 1.0), x.clamp(-1, 1))


def test_weighted_loss_reduces_to_plain_loss_with_unit_weights():
    schedule = NoiseSchedule("vp", 5)
    net = torch.nn.Linear(3 + 1 + 2, 3)

    actions, context = torch.rand(2, 16, 3), torch.rand(2, 16, 2)

    def denoiser(x, t):
        return net(torch.cat([x, t[..., None].float(), context], dim=-1))

    t, noise = torch.randint(0, 5, (2, 16)), torch.randn(2, 16, 3)
    _, predicted = noise_prediction(denoiser, schedule, actions, t, noise)
    plain = prediction_error(predicted, noise)
    weighted = prediction_error(predicted, noise, torch.ones(2, 16))
    assert plain.shape == (2,)
    torch.testing.assert_close(plain, weighted)  # only the order of summation differs
    # by hand: member 1's loss, with windows weighted 3 : 1
    error = ((denoiser(schedule.q_sample(actions, t, noise), t) - noise) ** 2).mean(dim=2)
    weights = torch.tensor([[1.0] * 16, [3.0] * 8 + [1.0] * 8])
    expected = (3 * error[1, :8].sum() + error[1, 8:].sum()) / 16
    torch.testing.assert_close(prediction_error(predicted, noise, weights)[1], expected)


def test_one_step_reconstruction_known_answers():
    """a_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t): the noised action itself when eps_theta is the
    true noise, and by hand for a VP schedule's abar at every step."""
    schedule = NoiseSchedule("vp", 5)
    actions = torch.rand(2, 8, 3) * 2 - 1
    t = torch.randint(5, (2, 8))
    noise = torch.randn(2, 8, 3)
    noisy = schedule.q_sample(actions, t, noise)
    torch.testing.assert_close(one_step_actions(schedule, noisy, t, noise, 1.0), actions, rtol=0, atol=1e-5)
    abar = schedule.alphas_cumprod
    x_t, predicted = torch.full((1, 5, 1), 0.5), torch.full((1, 5, 1), 0.2)
    steps = torch.arange(5)[None]
    expected = ((0.5 - (1 - abar).sqrt() * 0.2) / abar.sqrt()).clamp(-1, 1)
    torch.testing.assert_close(one_step_actions(schedule, x_t, steps, predicted, 1.0)[0, :, 0], expected)
    assert one_step_actions(schedule, torch.full((1, 1, 1), 9.0), torch.tensor([[4]]), torch.zeros(1, 1, 1),
                            0.4).item() == pytest.approx(0.4)  # clipped to the action bound


def test_chunk_error_leaves_out_the_steps_past_the_episode():
    """Chunks of 3 steps x 2 action entries: a sample's error is the mean over its held steps' entries, by hand."""
    generator = torch.Generator().manual_seed(0)
    predicted, noise = torch.randn(1, 2, 6, generator=generator), torch.randn(1, 2, 6, generator=generator)
    held = torch.tensor([[[True, True, True], [True, False, False]]])
    squared = ((predicted - noise) ** 2)[0]
    expected = (squared[0].mean() + squared[1, :2].mean()) / 2
    torch.testing.assert_close(prediction_error(predicted, noise, None, held)[0], expected)
    weighted = (2 * squared[0].mean() + 0.5 * squared[1, :2].mean()) / 2
    torch.testing.assert_close(prediction_error(predicted, noise, torch.tensor([[2.0, 0.5]]), held)[0], weighted)
    changed = predicted.clone()
    changed[0, 1, 2:] += 100.0  # the second sample's unheld steps
    torch.testing.assert_close(prediction_error(changed, noise, None, held), prediction_error(predicted, noise, None,
                                                                                              held))
