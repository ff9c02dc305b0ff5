"""Tests of visionbook.augment: batched affine against torchvision, mixup/cutmix against v2, TTA,
helpers."""

import pytest
import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from visionbook import augment
from visionbook.augment import (
    TrainAugment,
    TransformDataset,
    affine,
    balanced_subset,
    cutmix,
    cutmix_box,
    mixup,
    random_affine,
    seeds_by_settings,
    tta_predict,
)

# --- geometry -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(20, 20), (20, 28), (9, 7)])
def test_affine_matches_torchvision_image_by_image(size):
    torch.manual_seed(0)
    X = torch.rand(4, 3, *size)
    angles = torch.tensor([0.0, 30.0, -77.0, 180.0])
    shifts = torch.tensor([[2.0, -3.0], [0.0, 0.0], [1.5, 0.5], [-1.0, 2.0]])
    ours = affine(X, angles, shifts)
    for i in range(4):
        ref = TF.affine(
            X[i],
            angle=angles[i].item(),
            translate=shifts[i].tolist(),
            scale=1.0,
            shear=[0.0, 0.0],
            interpolation=v2.InterpolationMode.BILINEAR,
        )
        assert (ours[i] - ref).abs().max() < 1e-5


def test_affine_integer_shift_and_quarter_turn_by_hand():
    X = torch.arange(16.0).view(1, 1, 4, 4)
    right = affine(X, torch.zeros(1), torch.tensor([[1.0, 0.0]]))
    expected = torch.zeros_like(X)
    expected[..., 1:] = X[..., :-1]  # every pixel moves one column right, zeros come in on the left
    assert torch.allclose(right, expected, atol=1e-5)
    turned = affine(X, torch.tensor([90.0]), torch.zeros(1, 2))
    # clockwise, as v2.functional.affine
    assert torch.allclose(turned, torch.rot90(X, -1, (-2, -1)), atol=1e-4)


def test_random_affine_is_seeded_and_zero_range_is_identity():
    X = torch.rand(5, 1, 12, 12)
    torch.manual_seed(3)
    a = random_affine(X, 10, 2)
    torch.manual_seed(3)
    b = random_affine(X, 10, 2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, X)
    assert torch.allclose(random_affine(X, 0, 0), X, atol=1e-5)


def test_train_augment_only_in_training_mode():
    aug = TrainAugment(lambda X: X.flip(-1))
    X = torch.arange(4.0).view(1, 1, 1, 4)
    assert torch.equal(aug.train()(X), X.flip(-1))
    assert torch.equal(aug.eval()(X), X)


def test_transform_dataset_applies_transform_per_item():
    X, y = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 2])
    ds = TransformDataset(X, y, lambda x: x * 0)
    image, label = ds[1]
    assert len(ds) == 3 and label == 1 and torch.equal(image, torch.zeros(1, 4, 4))
    assert torch.equal(TransformDataset(X, y)[2][0], X[2])


# --- mixup and cutmix -----------------------------------------------------------------------


def test_mixup_by_hand():
    X = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1, 1)
    mixed, Y = mixup(X, torch.tensor([0, 1, 2]), 3, lam=0.75)
    # partner: i - 1
    assert mixed.flatten().tolist() == [
        0.75 * 0 + 0.25 * 2,
        0.75 * 1 + 0.25 * 0,
        0.75 * 2 + 0.25 * 1,
    ]
    assert Y.tolist() == [[0.75, 0, 0.25], [0.25, 0.75, 0], [0, 0.25, 0.75]]


@pytest.mark.parametrize("seed,alpha", [(0, 1.0), (1, 0.2), (2, 2.0)])
def test_mixup_equals_torchvision_mixup(seed, alpha):
    X, y = torch.rand(6, 3, 8, 10), torch.tensor([0, 1, 2, 3, 4, 0])
    torch.manual_seed(seed)
    X_ref, Y_ref = v2.MixUp(alpha=alpha, num_classes=5)(X, y)
    # the weight left on image 1's own class (its partner, image 0, has another)
    lam = Y_ref[1, 1].item()
    X_ours, Y_ours = mixup(X, y, 5, lam=lam)
    assert torch.allclose(X_ours, X_ref, atol=1e-6) and torch.allclose(Y_ours, Y_ref, atol=1e-6)
    torch.manual_seed(seed)  # sampling lam ourselves draws the same number from the same generator
    X_sampled, _ = mixup(X, y, 5, alpha=alpha)
    assert torch.allclose(X_sampled, X_ref, atol=1e-6)


def test_cutmix_box_by_hand():
    # half-side int(0.5 * sqrt(0.25) * 10) = 2
    assert cutmix_box(0.75, 10, 10, (5, 5)) == (3, 3, 7, 7)
    assert cutmix_box(0.0, 10, 20, (0, 9)) == (0, 4, 10, 10)  # clipped at the borders
    assert cutmix_box(1.0, 10, 10, (5, 5)) == (5, 5, 5, 5)  # empty patch


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cutmix_equals_torchvision_cutmix(seed):
    X, y = torch.rand(6, 3, 17, 23), torch.tensor([0, 1, 2, 3, 4, 0])
    torch.manual_seed(seed)
    X_ref, Y_ref = v2.CutMix(alpha=1.0, num_classes=5)(X, y)
    torch.manual_seed(seed)
    X_ours, Y_ours, (x0, y0, x1, y1) = cutmix(X, y, 5)
    assert torch.equal(X_ours, X_ref) and torch.allclose(Y_ours, Y_ref, atol=1e-6)
    changed = (X_ref != X).any(0).any(0)  # pixels torchvision replaced
    expected = torch.zeros_like(changed)
    expected[y0:y1, x0:x1] = True
    assert torch.equal(changed, expected)
    assert Y_ref[1, 1].item() == pytest.approx(1 - (x1 - x0) * (y1 - y0) / (17 * 23))


def test_cutmix_labels_weight_by_area():
    X = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    mixed, Y, box = cutmix(X, torch.tensor([0, 1]), 2, lam=0.75, center=(2, 2))
    assert box == (1, 1, 3, 3)
    assert mixed[0, 0].sum().item() == 4  # the 2x2 patch of ones from image 1 went into image 0
    assert Y.tolist() == [[0.75, 0.25], [0.25, 0.75]]


# --- test-time augmentation and the experiment helpers -------------------------------------


def test_tta_with_identity_equals_softmax_and_averages_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    X = torch.rand(7, 1, 4, 4)
    with torch.no_grad():
        p = model(X).softmax(1)
        p_flip = model(X.flip(-1)).softmax(1)
    assert torch.allclose(tta_predict(model, X, [lambda X: X], batch_size=3), p, atol=1e-6)
    assert torch.allclose(
        tta_predict(model, X, [lambda X: X, lambda X: X.flip(-1)]), (p + p_flip) / 2, atol=1e-6
    )


def test_balanced_subset_takes_per_class_examples():
    y = torch.tensor([0, 1, 2] * 5)
    idx = balanced_subset(y, 3, seed=1)
    assert len(idx) == 9 and len(set(idx.tolist())) == 9
    assert torch.bincount(y[idx]).tolist() == [3, 3, 3]
    assert torch.equal(idx, balanced_subset(y, 3, seed=1))
    assert not torch.equal(idx, balanced_subset(y, 3, seed=2))


def test_seeds_by_settings_runs_every_pair():
    calls = []
    results = seeds_by_settings(
        lambda s, k: calls.append((s, k)) or {"m": 10 * k}, ["a", "b"], [1, 2, 3]
    )
    assert calls == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]
    assert results["b"]["m"].tolist() == [10, 20, 30]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: affine(torch.zeros(28, 28), torch.zeros(1), torch.zeros(1, 2)),
            r"\(N, C, H, W\), got \(28, 28\)",
        ),
        (
            lambda: affine(torch.zeros(2, 1, 4, 4), torch.zeros(3), torch.zeros(2, 2)),
            r"angles \(2,\) and shifts \(2, 2\), got \(3,\)",
        ),
        (lambda: random_affine(torch.zeros(1, 1, 4, 4), -1), "expected degrees >= 0, got -1"),
        (
            lambda: TransformDataset(torch.zeros(2, 1, 4, 4), torch.zeros(3)),
            "one label per image, got 3 labels for 2 images",
        ),
        (
            lambda: mixup(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), 2, lam=1.5),
            r"lam in \[0, 1\], got 1.5",
        ),
        (
            lambda: mixup(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), 2, alpha=0),
            "alpha > 0, got 0",
        ),
        (
            lambda: mixup(torch.zeros(2, 1, 4, 4), torch.tensor([0.0, 1.0]), 2),
            r"integer labels of shape \(2,\)",
        ),
        (
            lambda: mixup(torch.zeros(2, 1, 4, 4), torch.tensor([0, 3]), 2),
            "labels in 0..1, got values from 0 to 3",
        ),
        (lambda: cutmix_box(-0.1, 4, 4, (2, 2)), r"lam in \[0, 1\], got -0.1"),
        (
            lambda: cutmix(torch.zeros(1, 4, 4), torch.tensor([0]), 2),
            r"\(N, C, H, W\), got \(1, 4, 4\)",
        ),
        (
            lambda: tta_predict(nn.Flatten(), torch.zeros(1, 1, 2, 2), []),
            "at least one view, got none",
        ),
        (
            lambda: balanced_subset(torch.tensor([0, 0, 1]), 2),
            "at least 2 examples of class 1, got 1",
        ),
        (
            lambda: seeds_by_settings(lambda s, k: {}, [], [0]),
            "at least one setting and one seed, got 0 and 1",
        ),
    ],
)
def test_errors_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_train_augment_rejects_non_callable_with_type_error():
    with pytest.raises(TypeError, match="callable batch augmentation, got str"):
        TrainAugment("flip")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: augment.affine(torch.zeros(2, 1, 4, 4), [0.0, 0.0], torch.zeros(2, 2)),
            TypeError,
            r"expected angles as a tensor of shape \(2,\), got list",
        ),
        (
            lambda: augment.random_affine(torch.zeros(1, 1, 4, 4), "10"),
            TypeError,
            "expected a number for degrees, got '10'",
        ),
        (
            lambda: augment.TransformDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2), "flip"),
            TypeError,
            "expected a callable transform or None, got str",
        ),
        (
            lambda: augment.mixup(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), "2"),
            TypeError,
            "expected an integer num_classes, got '2'",
        ),
        (
            lambda: augment.cutmix_box(0.5, 10, 10, (5,)),
            TypeError,
            r"expected center as a pair of integers \(cx, cy\), got \(5,\)",
        ),
        (lambda: augment.cutmix_box("0.5", 10, 10, (5, 5)), TypeError, "expected a number for lam"),
        (
            lambda: augment.tta_predict(nn.Flatten(), torch.zeros(2, 1, 1, 3), lambda X: X),
            TypeError,
            "expected views as a list of callables",
        ),
        (
            lambda: augment.balanced_subset(torch.zeros(2, 2).long(), 1),
            ValueError,
            r"expected labels of shape \(N,\), got \(2, 2\)",
        ),
        (
            lambda: augment.balanced_subset(torch.zeros(4), 1),
            TypeError,
            "expected integer labels, got dtype torch.float32",
        ),
        (
            lambda: augment.balanced_subset(torch.zeros(4).long(), 0),
            ValueError,
            "expected an integer per_class of at least 1, got 0",
        ),
        (
            lambda: augment.seeds_by_settings("run", ["a"], [0]),
            TypeError,
            r"expected run as a callable run\(setting, seed\)",
        ),
        (
            lambda: augment.seeds_by_settings(lambda s, k: {}, "ab", [0]),
            TypeError,
            "expected settings as a list of names and seeds as a list of integers",
        ),
    ],
)
def test_new_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_affine_zoom_agrees_with_torchvision_image_by_image():
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    torch.manual_seed(0)
    X = torch.rand(3, 2, 12, 16)
    angles, shifts = torch.tensor([0.0, 20.0, -35.0]), torch.tensor([[0.0, 0], [1, -2], [-3, 1]])
    scales = torch.tensor([1.25, 0.8, 1.1])
    ours = affine(X, angles, shifts, scales)
    for i in range(3):
        theirs = TF.affine(
            X[i], angle=angles[i].item(), translate=shifts[i].tolist(), scale=scales[i].item(),
            shear=[0.0], interpolation=InterpolationMode.BILINEAR,
        )  # fmt: skip
        torch.testing.assert_close(ours[i], theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(affine(X, angles, shifts, torch.ones(3)), affine(X, angles, shifts))
    with pytest.raises(ValueError, match=r"expected positive scales of shape \(3,\), got \(3,\)"):
        affine(X, angles, shifts, torch.tensor([1.0, 0.0, 1.0]))


def test_random_affine_with_a_generator_and_zoom():
    X = torch.rand(4, 1, 28, 28)
    a = random_affine(X, 12, 2.5, scale=0.12, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    b = random_affine(X, 12, 2.5, scale=0.12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and torch.equal(torch.random.get_rng_state(), state)
    # the parameters it drew: angles (4,), shifts (4, 2), zooms (4,), in that order
    u = torch.rand(16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = affine(X, u[:4] * 12, u[4:12].view(4, 2) * 2.5, 1 + u[12:] * 0.12)
    torch.testing.assert_close(a, expected)
    zoomed = random_affine(X, 0, 0, scale=0.5, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(zoomed, X)
    with pytest.raises(TypeError, match="expected generator as a torch.Generator or None, got 0"):
        random_affine(X, generator=0)
    with pytest.raises(ValueError, match=r"expected scale in \[0, 0.99\], got 1"):
        random_affine(X, scale=1)
