"""FGSM and PGD against Captum's implementations, the epsilon ball, and a linear model by hand."""

import pytest
import torch
import torch.nn.functional as F
from captum.robust import FGSM, PGD
from torch import nn

from visionbook.adversarial import accuracy_under, fgsm, input_gradient, pgd


def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    ).eval()
    g = torch.Generator().manual_seed(seed)
    return model, torch.rand(16, 1, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)


def _loss(out, target):
    return F.cross_entropy(out, target, reduction="none")


def test_fgsm_matches_captum():
    model, x, y = _model_and_data()
    attack = FGSM(model, loss_func=_loss, lower_bound=0.0, upper_bound=1.0)
    attack.zero_thresh = 0.0  # Captum leaves pixels with |gradient| <= 1e-6 alone by default
    torch.testing.assert_close(
        fgsm(model, x, y, 0.1), attack.perturb(x, 0.1, target=y), atol=1e-7, rtol=0
    )


def test_pgd_matches_captum():
    model, x, y = _model_and_data(1)
    attack = PGD(model, loss_func=_loss, lower_bound=0.0, upper_bound=1.0)
    attack.fgsm.zero_thresh = 0.0
    expected = attack.perturb(x, radius=0.08, step_size=0.02, step_num=7, target=y)
    torch.testing.assert_close(
        pgd(model, x, y, 0.08, step_size=0.02, steps=7), expected, atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("attack", [fgsm, pgd])
def test_perturbation_stays_in_the_ball_and_the_pixel_range(attack):
    model, x, y = _model_and_data(2)
    adv = attack(model, x, y, 0.05)
    delta = adv - x
    assert delta.abs().max().item() == pytest.approx(0.05, abs=1e-6)
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(attack(model, x, y, 0.0), x)


def test_fgsm_on_a_linear_model_by_hand():
    # two classes, logits (0, w . x): for label 0 the loss grows along +w, so pixels move
    # by eps * sign(w)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, -0.1]]))
    x = torch.full((1, 1, 2, 2), 0.5)
    adv = fgsm(model, x, torch.tensor([0]), 0.2)
    assert adv.flatten().tolist() == pytest.approx([0.7, 0.3, 0.7, 0.3])
    grad = input_gradient(model, x, torch.tensor([0]))
    p1 = torch.sigmoid(torch.tensor(0.5 * (1 - 2 + 0.5 - 0.1)))
    torch.testing.assert_close(grad.flatten(), p1 * torch.tensor([1.0, -2.0, 0.5, -0.1]))


def test_attacks_lower_accuracy_and_leave_parameters_alone():
    model, x, y = _model_and_data(3)
    y = model(x).argmax(1)  # labels the model gets right
    assert accuracy_under(model, x, y) == 1.0
    before = [p.clone() for p in model.parameters()]
    assert accuracy_under(model, pgd(model, x, y, 0.3), y) < 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_errors():
    model, x, y = _model_and_data()
    with pytest.raises(ValueError, match=r"images of shape \(N, C, H, W\)"):
        fgsm(model, x[0], y, 0.1)
    with pytest.raises(ValueError, match=r"labels of shape \(16,\)"):
        fgsm(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="epsilon in"):
        fgsm(model, x, y, 8)
    with pytest.raises(ValueError, match="positive integer number of steps"):
        pgd(model, x, y, 0.1, steps=0)
