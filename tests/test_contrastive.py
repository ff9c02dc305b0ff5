"""Tests of visionbook.contrastive: NT-Xent against a direct loop and F.cross_entropy, its split
into the positive-pair and negatives' terms, the two-view augmentations, the projection head and the
SimCLR loop, kNN accuracy, the spread and effective rank of embeddings, and the toy CLIP (captioned
shapes, the bag-of-words encoder, the symmetric loss, zero-shot prediction)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionbook import contrastive
from visionbook.shapes import SHAPES


def _pairs(n=5, d=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


def _nt_xent_loop(z1, z2, temperature):
    """The formula, one view at a time, with Python loops."""
    z, n = torch.cat([z1, z2]), len(z1)
    total = 0.0
    for i in range(2 * n):
        sims = [F.cosine_similarity(z[i], z[k], dim=0) / temperature for k in range(2 * n)]
        denominator = sum(torch.exp(s) for k, s in enumerate(sims) if k != i)
        total = total - torch.log(torch.exp(sims[(i + n) % (2 * n)]) / denominator)
    return total / (2 * n)


# --- NT-Xent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.05, 0.2, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_nt_xent_matches_the_loop_and_cross_entropy(temperature, seed):
    z1, z2 = _pairs(seed=seed)
    loop = _nt_xent_loop(z1, z2, temperature)
    assert torch.allclose(contrastive.nt_xent(z1, z2, temperature), loop, atol=1e-6, rtol=0)
    logits, targets = contrastive.contrastive_logits(z1, z2, temperature)
    assert torch.allclose(F.cross_entropy(logits, targets), loop, atol=1e-6, rtol=0)


def test_nt_xent_in_float32_agrees_with_float64():
    z1, z2 = _pairs(n=16, d=8, seed=3)
    ours = contrastive.nt_xent(z1.float(), z2.float(), 0.1)
    assert ours.dtype == torch.float32
    assert abs(ours.item() - contrastive.nt_xent(z1, z2, 0.1).item()) < 1e-5


def test_nt_xent_gradients_match_the_loop():
    z1, z2 = _pairs(n=4, d=3, seed=2)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    contrastive.nt_xent(a1, a2, 0.3).backward()
    _nt_xent_loop(b1, b2, 0.3).backward()
    assert torch.allclose(a1.grad, b1.grad, atol=1e-10) and torch.allclose(
        a2.grad, b2.grad, atol=1e-10
    )


def test_contrastive_logits_masks_the_diagonal_and_points_at_the_partner():
    logits, targets = contrastive.contrastive_logits(*_pairs(n=3), 0.5)
    assert (
        logits.shape == (6, 6)
        and torch.isinf(logits.diagonal()).all()
        and (logits.diagonal() < 0).all()
    )
    assert targets.tolist() == [3, 4, 5, 0, 1, 2]
    off = ~torch.eye(6, dtype=torch.bool)
    assert (logits[off].abs() <= 1 / 0.5 + 1e-12).all()  # cosine over the temperature
    assert torch.allclose(logits[off], logits.T[off])  # symmetric


def test_nt_xent_hand_computed_values():
    # orthogonal views: every candidate scores 0, so the loss is log(2N - 1)
    eye = torch.eye(6)
    assert math.isclose(
        contrastive.nt_xent(eye[:3], eye[3:], 1.0).item(), math.log(5), rel_tol=1e-6
    )
    # identical views of two orthogonal images: partner cos 1, the other image's two views cos 0
    z = torch.eye(2)
    expected = -math.log(math.e / (math.e + 2))
    assert math.isclose(contrastive.nt_xent(z, z, 1.0).item(), expected, rel_tol=1e-6)
    # the scale of the embeddings does not matter
    z1, z2 = _pairs()
    assert torch.allclose(contrastive.nt_xent(3 * z1, 0.1 * z2), contrastive.nt_xent(z1, z2))


def test_nt_xent_splits_into_positive_pair_and_negatives_terms():
    z1, z2 = _pairs(n=6, d=4, seed=5)
    logits, _ = contrastive.contrastive_logits(z1, z2, 0.2)
    split = contrastive.positive_pair_loss(z1, z2, 0.2) + torch.logsumexp(logits, dim=1).mean()
    assert torch.allclose(split, contrastive.nt_xent(z1, z2, 0.2), atol=1e-10)


def test_positive_pair_loss_is_minimal_for_collapsed_embeddings():
    same = torch.ones(4, 3)
    assert math.isclose(contrastive.positive_pair_loss(same, same, 0.5).item(), -2.0, rel_tol=1e-6)
    z1, z2 = _pairs(seed=1)
    assert contrastive.positive_pair_loss(z1, z2, 0.5) > -2.0
    # ... while NT-Xent punishes collapse: every candidate is as similar as the partner
    assert math.isclose(contrastive.nt_xent(same, same, 0.5).item(), math.log(7), rel_tol=1e-6)


def test_losses_reject_bad_input():
    z = torch.zeros(3, 2)
    with pytest.raises(
        ValueError,
        match=(
            r"expected embeddings z1 and z2 of the same shape \(N, D\) with N >= 1, got \(3, 2\) "
            r"and \(2, 2\)"
        ),
    ):
        contrastive.nt_xent(z, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"expected embeddings z1 of shape \(N, D\), got \(3,\)"):
        contrastive.positive_pair_loss(torch.zeros(3), z)
    with pytest.raises(
        TypeError, match=r"expected embeddings z2 as a tensor of shape \(N, D\), got list"
    ):
        contrastive.contrastive_logits(z, [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"expected a positive temperature, got 0"):
        contrastive.nt_xent(z, z, 0)
    with pytest.raises(TypeError, match=r"expected a number for temperature, got 'hot'"):
        contrastive.nt_xent(z, z, "hot")
    with pytest.raises(ValueError, match=r"expected embeddings z1 and z2 of the same shape"):
        contrastive.nt_xent(torch.zeros(0, 2), torch.zeros(0, 2))


# --- augmentations, head, pre-training ----------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_simclr_augment_keeps_shape_and_range_and_differs_per_call(channels):
    torch.manual_seed(0)
    X = torch.rand(6, channels, 28, 28)
    v1, v2 = contrastive.two_views(X)
    assert v1.shape == v2.shape == X.shape and v1.dtype == X.dtype
    assert v1.min() >= 0 and v1.max() <= 1 and not torch.equal(v1, v2)


def test_simclr_augment_is_the_identity_without_randomness():
    X = torch.rand(3, 1, 16, 16)
    same = contrastive.simclr_augment(
        X, crop_scale=(1.0, 1.0), degrees=0.0, jitter=0.0, grey=0.0, erase=0.0, noise=0.0
    )
    assert torch.allclose(same, X, atol=1e-5)


def test_simclr_augment_erases_and_turns_grey():
    X = torch.ones(64, 3, 16, 16) * torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.manual_seed(0)
    erased = contrastive.simclr_augment(
        X, crop_scale=(1.0, 1.0), degrees=0.0, jitter=0.0, grey=0.0, erase=1.0, noise=0.0
    )
    zeros = (erased[:, 0] == 0).flatten(1).float().mean(1)  # fraction of each image blanked
    assert zeros.min() >= 0.03 and zeros.max() <= 0.25
    grey = contrastive.simclr_augment(
        X, crop_scale=(1.0, 1.0), degrees=0.0, jitter=0.0, grey=1.0, erase=0.0, noise=0.0
    )
    # red's luma in every channel
    assert torch.allclose(grey, torch.full_like(grey, 0.299), atol=1e-5)


def test_simclr_augment_is_repeatable_with_the_seed():
    X = torch.rand(4, 1, 28, 28)
    torch.manual_seed(3)
    a = contrastive.simclr_augment(X)
    torch.manual_seed(3)
    assert torch.equal(a, contrastive.simclr_augment(X))


def test_simclr_augment_rejects_bad_input():
    with pytest.raises(
        ValueError, match=r"expected images of shape \(N, C, H, W\), got \(28, 28\)"
    ):
        contrastive.simclr_augment(torch.zeros(28, 28))
    with pytest.raises(ValueError, match=r"with 1 or 3 channels, got \(2, 2, 8, 8\)"):
        contrastive.simclr_augment(torch.zeros(2, 2, 8, 8))
    with pytest.raises(
        ValueError, match=r"expected 0 < crop_scale\[0\] <= crop_scale\[1\] <= 1, got \(0.8, 0.5\)"
    ):
        contrastive.simclr_augment(torch.zeros(2, 1, 8, 8), crop_scale=(0.8, 0.5))
    with pytest.raises(TypeError, match=r"expected crop_scale as a pair"):
        contrastive.simclr_augment(torch.zeros(2, 1, 8, 8), crop_scale=0.5)
    with pytest.raises(ValueError, match=r"expected erase in \[0, 1\], got 2"):
        contrastive.simclr_augment(torch.zeros(2, 1, 8, 8), erase=2)


def test_projection_head_shapes_and_errors():
    head = contrastive.projection_head(10, 6, 4)
    assert head(torch.zeros(3, 10)).shape == (3, 4)
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    with pytest.raises(ValueError, match=r"expected an integer hidden of at least 1, got 0"):
        contrastive.projection_head(10, 0)


def test_simclr_pretrain_lowers_the_loss_and_records_the_callback():
    torch.manual_seed(0)
    X = torch.rand(64, 1, 8, 8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8))
    noisy = lambda X: (X + 0.05 * torch.randn_like(X), X + 0.05 * torch.randn_like(X))
    calls = []
    history = contrastive.simclr_pretrain(
        model,
        X,
        60,
        batch_size=32,
        lr=1e-2,
        augment=noisy,
        every=20,
        callback=lambda step: calls.append(step) or {"m": step},
    )
    assert len(history) == 61 and math.isnan(history[0]["loss"]) and calls == [0, 20, 40, 60]
    assert [h.get("m") for h in history if "m" in h] == [0, 20, 40, 60]
    first, last = history[1]["loss"], sum(h["loss"] for h in history[-10:]) / 10
    assert last < first - 0.5 and not model.training


def test_simclr_pretrain_with_positive_pairs_only_collapses():
    torch.manual_seed(0)
    X = torch.rand(64, 1, 8, 8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8))
    noisy = lambda X: (X + 0.05 * torch.randn_like(X), X + 0.05 * torch.randn_like(X))
    before = contrastive.embedding_std(model(X).detach())
    contrastive.simclr_pretrain(
        model, X, 100, batch_size=32, lr=1e-2, augment=noisy, loss_fn=contrastive.positive_pair_loss
    )
    assert contrastive.embedding_std(model(X).detach()) < 0.1 * before


def test_simclr_pretrain_rejects_bad_input():
    model = nn.Linear(2, 2)
    with pytest.raises(
        ValueError, match=r"expected images X of shape \(N, C, H, W\), got \(4, 2\)"
    ):
        contrastive.simclr_pretrain(model, torch.zeros(4, 2), 1)
    with pytest.raises(ValueError, match=r"expected an integer batch_size of at least 2, got 1"):
        contrastive.simclr_pretrain(model, torch.zeros(4, 1, 1, 2), 1, batch_size=1)
    with pytest.raises(TypeError, match=r"expected model as an nn.Module, got str"):
        contrastive.simclr_pretrain("net", torch.zeros(4, 1, 1, 2), 1)


# --- measures of an embedding ---------------------------------------------------------------------


def test_knn_accuracy_hand_computed_and_against_a_brute_force_vote():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.1, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    test = torch.tensor([[2.0, 0.1], [0.0, 3.0], [-1.0, 0.1]])
    assert contrastive.knn_accuracy(train, labels, test, torch.tensor([0, 1, 2]), k=1) == 1.0
    assert contrastive.knn_accuracy(
        train, labels, test, torch.tensor([0, 1, 1]), k=1
    ) == pytest.approx(2 / 3)
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(40, 5, generator=g), torch.randn(15, 5, generator=g)
    labels, test_labels = (
        torch.randint(0, 3, (40,), generator=g),
        torch.randint(0, 3, (15,), generator=g),
    )
    sims = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    votes = [
        torch.bincount(labels[row.argsort(descending=True)[:7]], minlength=3).argmax()
        for row in sims
    ]
    expected = (torch.stack(votes) == test_labels).float().mean().item()
    assert contrastive.knn_accuracy(train, labels, test, test_labels, k=7) == pytest.approx(
        expected
    )


def test_knn_accuracy_rejects_bad_input():
    f = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"expected one label per example"):
        contrastive.knn_accuracy(f, torch.zeros(3).long(), f, torch.zeros(4).long())
    with pytest.raises(
        ValueError, match=r"expected k of at most 4 \(the training examples\), got 5"
    ):
        contrastive.knn_accuracy(f, torch.zeros(4).long(), f, torch.zeros(4).long(), k=5)
    with pytest.raises(ValueError, match=r"expected features of the same width, got 2 and 3"):
        contrastive.knn_accuracy(f, torch.zeros(4).long(), torch.zeros(4, 3), torch.zeros(4).long())


def test_embedding_std_hand_computed():
    assert contrastive.embedding_std(torch.ones(5, 3)) == 0.0
    # +-e1 in equal numbers: unit vectors, std 1 along the first coordinate (N - 1 denominator), 0
    # along the second
    z = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [3.0, 0.0], [-5.0, 0.0]])
    assert contrastive.embedding_std(z) == pytest.approx(
        torch.tensor([1.0, -1.0, 1.0, -1.0]).std().item() / 2
    )
    g = torch.Generator().manual_seed(0)
    spread = contrastive.embedding_std(torch.randn(20000, 16, generator=g))
    assert spread == pytest.approx(1 / math.sqrt(16), rel=0.02)


def test_effective_rank_hand_computed_and_scale_free():
    assert contrastive.effective_rank(torch.ones(4, 3)) == 0.0
    line = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0]])
    assert contrastive.effective_rank(line) == pytest.approx(1.0)
    square = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    assert contrastive.effective_rank(square) == pytest.approx(2.0)
    assert contrastive.effective_rank(1e-3 * square) == pytest.approx(2.0)
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(50, 6, generator=g, dtype=torch.float64)
    s = torch.linalg.svdvals(Z - Z.mean(0))
    p = s / s.sum()
    assert contrastive.effective_rank(Z) == pytest.approx(torch.exp(-(p * p.log()).sum()).item())


def test_measures_reject_bad_input():
    with pytest.raises(ValueError, match=r"expected at least 2 embeddings \(N, D\), got \(1, 3\)"):
        contrastive.embedding_std(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"expected embeddings Z of shape \(N, D\), got \(3,\)"):
        contrastive.effective_rank(torch.zeros(3))


# --- the toy CLIP ---------------------------------------------------------------------------------


def test_captioned_shapes_balanced_deterministic_and_captioned():
    pairs = [("red", "circle"), ("blue", "star"), ("green", "cross")]
    d = contrastive.captioned_shapes(30, pairs, size=24, seed=4)
    assert d.images.shape == (30, 3, 24, 24) and d.images.min() >= 0 and d.images.max() <= 1
    assert sorted(set(d.captions)) == ["a blue star", "a green cross", "a red circle"]
    assert all(d.captions.count(contrastive.caption(*p)) == 10 for p in pairs)
    colours = list(contrastive.COLOURS)
    assert all(
        c == f"a {colours[k]} {SHAPES[s]}"
        for c, k, s in zip(d.captions, d.colours.tolist(), d.shapes.tolist())
    )
    again = contrastive.captioned_shapes(30, pairs, size=24, seed=4)
    assert torch.equal(again.images, d.images) and again.captions == d.captions


def test_captioned_shapes_colours_match_their_names():
    d = contrastive.captioned_shapes(
        60, [("red", "square"), ("green", "square"), ("blue", "square")], seed=0
    )
    # the square always covers the middle of the image
    centre = d.images[:, :, 14:18, 14:18].mean((2, 3))
    for name in ("red", "green", "blue"):
        rows = d.colours == list(contrastive.COLOURS).index(name)
        channel = ("red", "green", "blue").index(name)
        assert (centre[rows].argmax(1) == channel).all(), name


def test_caption_and_captioned_shapes_reject_bad_input():
    with pytest.raises(
        ValueError,
        match=r"expected a colour from .* and a shape from .*, got 'purple' and 'circle'",
    ):
        contrastive.caption("purple", "circle")
    with pytest.raises(TypeError, match=r"expected pairs as \(colour, shape\) tuples, got 'red'"):
        contrastive.captioned_shapes(4, ["red"])
    with pytest.raises(ValueError, match=r"expected an image size of at least 16 pixels, got 8"):
        contrastive.captioned_shapes(4, [("red", "circle")], size=8)


def test_bag_of_words_ignores_word_order_and_rejects_unknown_words():
    torch.manual_seed(0)
    encoder = contrastive.BagOfWords(["a", "red", "blue", "star"], dim=4, out_features=3)
    out = encoder(["a red star", "star red a", "a blue star"])
    assert (
        out.shape == (3, 3)
        and torch.allclose(out[0], out[1])
        and not torch.allclose(out[0], out[2])
    )
    words = encoder.words.weight
    expected = encoder.out((words[0] + words[1] + words[3]) / 3)
    assert torch.allclose(out[0], expected, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"expected captions of known words, got unknown words \['green'\]"
    ):
        encoder(["a green star"])
    with pytest.raises(TypeError, match=r"expected a list of caption strings, got str"):
        encoder("a red star")
    with pytest.raises(ValueError, match=r"expected distinct single words"):
        contrastive.BagOfWords(["a", "a"])


def test_clip_loss_matches_a_loop_and_is_symmetric():
    images, texts = _pairs(n=4, d=5, seed=7)
    loss = contrastive.clip_loss(images, texts, 0.2)
    sims = (
        torch.stack(
            [torch.stack([F.cosine_similarity(i, t, dim=0) for t in texts]) for i in images]
        )
        / 0.2
    )
    rows = sum(-torch.log(torch.exp(sims[i, i]) / torch.exp(sims[i]).sum()) for i in range(4)) / 4
    cols = (
        sum(-torch.log(torch.exp(sims[i, i]) / torch.exp(sims[:, i]).sum()) for i in range(4)) / 4
    )
    assert torch.allclose(loss, (rows + cols) / 2, atol=1e-10)
    assert torch.allclose(loss, contrastive.clip_loss(texts, images, 0.2))
    assert math.isclose(
        contrastive.clip_loss(torch.ones(3, 2), torch.ones(3, 2)).item(), math.log(3), rel_tol=1e-6
    )


def test_zero_shot_predict_picks_the_most_similar_caption():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    images = torch.tensor([[10.0, 1.0], [0.1, 0.2], [-0.5, -0.4]])
    assert contrastive.zero_shot_predict(images, classes).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"expected embeddings of the same width"):
        contrastive.zero_shot_predict(images, torch.zeros(3, 4))


def test_clip_pretrain_learns_a_tiny_pairing():
    torch.manual_seed(0)
    pairs = [("red", "circle"), ("blue", "circle"), ("red", "cross"), ("blue", "cross")]
    d = contrastive.captioned_shapes(40, pairs, size=16, seed=0)
    image_encoder = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 8),
    )
    text_encoder = contrastive.BagOfWords(["a", "red", "blue", "circle", "cross"], 8, 8)
    losses = contrastive.clip_pretrain(
        image_encoder, text_encoder, d, 150, lr=1e-2, temperature=0.2
    )
    assert len(losses) == 150 and sum(losses[-10:]) / 10 < losses[0] - 0.3
    assert not image_encoder.training and not text_encoder.training
    with torch.no_grad():
        captions = sorted(set(d.captions))
        predicted = contrastive.zero_shot_predict(image_encoder(d.images), text_encoder(captions))
    colours = torch.tensor(["red" in captions[p] for p in predicted.tolist()])
    # colour is easy
    assert (colours == (d.colours == list(contrastive.COLOURS).index("red"))).float().mean() >= 0.9


def test_clip_pretrain_rejects_bad_input():
    encoder = contrastive.BagOfWords(["a", "red", "circle"])
    with pytest.raises(
        TypeError, match=r"expected data as CaptionedShapes \(from captioned_shapes\), got tuple"
    ):
        contrastive.clip_pretrain(nn.Linear(2, 2), encoder, (torch.zeros(1), ["a red circle"]), 1)
    with pytest.raises(TypeError, match=r"expected text_encoder as an nn.Module, got str"):
        contrastive.clip_pretrain(
            nn.Linear(2, 2), "words", contrastive.captioned_shapes(2, [("red", "circle")]), 1
        )
