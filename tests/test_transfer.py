"""Tests of visionbook.transfer: few-shot subsets, freezing and batch norm, discriminative
learning rates, linear probes, fine-tuning, texture patches, ImageNet features, cutting a network
for cached fine-tuning, and the ResNet-18 recipe with random weights (and offline)."""

import socket
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.models
from sklearn.linear_model import LogisticRegression
from torch import nn
from torchvision.models import ResNet18_Weights

from visionbook import data, imagenet, transfer


def _small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )


def _blobs(n_per_class=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    X = torch.cat([c + torch.randn(n_per_class, 2, generator=g) for c in centres])
    return X, torch.arange(3).repeat_interleave(n_per_class)


# --- subsets ---------------------------------------------------------------------------------


def test_subset_classes_keeps_and_relabels_in_the_given_order():
    X = torch.arange(6.0)
    y = torch.tensor([3, 1, 4, 1, 5, 9])
    X_sub, y_sub = transfer.subset_classes(X, y, [4, 1])
    assert X_sub.tolist() == [1.0, 2.0, 3.0] and y_sub.tolist() == [1, 0, 1]
    X_sub, y_sub = transfer.subset_classes(X, y, range(5, 10))
    assert X_sub.tolist() == [4.0, 5.0] and y_sub.tolist() == [0, 4]


def test_subset_classes_rejects_bad_input():
    with pytest.raises(
        ValueError, match=r"expected labels \(N,\) for N examples, got labels \(2,\) for 3 examples"
    ):
        transfer.subset_classes(torch.zeros(3), torch.tensor([0, 1]), [0])
    with pytest.raises(ValueError, match=r"expected distinct classes, got \[1, 1\]"):
        transfer.subset_classes(torch.zeros(2), torch.tensor([0, 1]), [1, 1])
    with pytest.raises(ValueError, match=r"expected distinct classes, got \[\]"):
        transfer.subset_classes(torch.zeros(2), torch.tensor([0, 1]), [])


def test_few_shot_draws_per_class_and_nests_budgets():
    y = torch.arange(4).repeat(25)
    one, five = transfer.few_shot(y, 1, seed=3), transfer.few_shot(y, 5, seed=3)
    assert torch.bincount(y[five]).tolist() == [5, 5, 5, 5] and len(set(five.tolist())) == 20
    assert set(one.tolist()) <= set(five.tolist())
    assert not torch.equal(transfer.few_shot(y, 5, seed=4), five)
    assert torch.equal(transfer.few_shot(y, 5, seed=3), five)


def test_few_shot_rejects_bad_budgets():
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="expected at least 2 examples of class 1, got 1"):
        transfer.few_shot(y, 2)
    with pytest.raises(ValueError, match="expected a positive integer per_class, got 0"):
        transfer.few_shot(y, 0)
    with pytest.raises(ValueError, match="expected a positive integer per_class, got 1.5"):
        transfer.few_shot(y, 1.5)


# --- freezing and batch norm -------------------------------------------------------------------


def test_freeze_and_count_trainable():
    model = _small_cnn()
    assert transfer.count_trainable(model) == (4 * 9 + 4) + (4 + 4) + (64 * 3 + 3)
    assert transfer.freeze(model[0]) is model[0]
    assert transfer.count_trainable(model) == 64 * 3 + 3
    assert all(not p.requires_grad for p in model[0].parameters())


def test_frozen_parameters_do_not_freeze_batch_norm_statistics_but_bn_eval_does():
    model = _small_cnn()
    transfer.freeze(model)
    bn = model[0][1]
    before = bn.running_mean.clone()
    model.train()(torch.rand(8, 1, 8, 8) + 5)
    assert not torch.equal(bn.running_mean, before)  # requires_grad=False did not stop the update
    before = bn.running_mean.clone()
    model.train()
    assert transfer.bn_eval(model) == 1
    model(torch.rand(8, 1, 8, 8) + 5)
    assert torch.equal(bn.running_mean, before) and not bn.training and model[2].training


def test_bn_eval_counts_every_kind_of_batch_norm():
    model = nn.Sequential(
        nn.BatchNorm1d(2), nn.BatchNorm2d(2), nn.BatchNorm3d(2), nn.Linear(2, 2)
    ).train()
    assert transfer.bn_eval(model) == 3 and model[3].training


# --- discriminative learning rates -------------------------------------------------------------


def test_discriminative_lrs_by_hand():
    blocks = [nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 3)]
    groups = transfer.discriminative_lrs(blocks, lr=0.01, factor=2.0)
    assert [g["lr"] for g in groups] == [0.0025, 0.005, 0.01]
    assert [sum(p.numel() for p in g["params"]) for g in groups] == [6, 6, 9]
    torch.optim.Adam(groups)  # a valid optimizer specification


def test_discriminative_lrs_leave_out_frozen_parameters():
    blocks = [nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 3)]
    transfer.freeze(blocks[0])
    blocks[1].bias.requires_grad_(False)
    groups = transfer.discriminative_lrs(blocks, lr=1.0, factor=10.0)
    assert [g["lr"] for g in groups] == [0.1, 1.0]
    assert [len(g["params"]) for g in groups] == [1, 2]


def test_discriminative_lrs_rejects_bad_rates():
    with pytest.raises(ValueError, match="expected lr > 0 and factor >= 1, got lr=0, factor=2.6"):
        transfer.discriminative_lrs([nn.Linear(1, 1)], lr=0)
    with pytest.raises(ValueError, match="expected lr > 0 and factor >= 1, got lr=0.1, factor=0.5"):
        transfer.discriminative_lrs([nn.Linear(1, 1)], lr=0.1, factor=0.5)


# --- features and linear probes ----------------------------------------------------------------


def test_extract_features_is_the_eval_mode_forward_in_batches():
    model = _small_cnn()
    model.train()(torch.rand(16, 1, 8, 8))  # give BN running statistics that differ from batch ones
    X = torch.rand(10, 1, 8, 8)
    feats = transfer.extract_features(model[:2], X, batch_size=3)
    with torch.no_grad():
        expected = model[:2].eval()(X)
    torch.testing.assert_close(feats, expected, atol=1e-6, rtol=0)
    assert feats.shape == (10, 64) and not feats.requires_grad


def test_linear_probe_separates_and_agrees_with_scikit_learn():
    X, y = _blobs()
    probe = transfer.train_linear_probe(X, y, 3, steps=300, lr=0.05, weight_decay=0.0)
    X_test, y_test = _blobs(seed=1)
    ours = probe(X_test).argmax(1)
    theirs = LogisticRegression(max_iter=1000).fit(X.numpy(), y.numpy()).predict(X_test.numpy())
    assert (ours == y_test).float().mean() >= 0.95
    assert np.mean(ours.numpy() == theirs) >= 0.95


def test_linear_probe_is_deterministic_and_checks_shapes():
    X, y = _blobs()
    a, b = (
        transfer.train_linear_probe(X, y, 3, steps=5),
        transfer.train_linear_probe(X, y, 3, steps=5),
    )
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(
        ValueError, match=r"expected features \(N, D\) and labels \(N,\), got \(60,\) and \(60,\)"
    ):
        transfer.train_linear_probe(X[:, 0], y, 3)


# --- fine-tuning ---------------------------------------------------------------------------------


def test_fine_tune_full_batch_sgd_matches_a_hand_written_loop():
    X, y = _blobs(5)
    ours, ref = nn.Linear(2, 3), nn.Linear(2, 3)
    ref.load_state_dict(ours.state_dict())
    losses = transfer.fine_tune(
        ours, X, y, 4, torch.optim.SGD(ours.parameters(), lr=0.1), batch_size=100
    )
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(X), y).backward()
        opt.step()
    torch.testing.assert_close(ours.weight, ref.weight, atol=1e-6, rtol=0)
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_fine_tune_keeps_the_frozen_part_in_eval_mode_and_unchanged():
    model = _small_cnn()
    transfer.freeze(model[0])
    before = {k: v.clone() for k, v in model[0].state_dict().items()}
    head_before = model[2].weight.clone()
    X, y = torch.rand(12, 1, 8, 8) + 3, torch.randint(0, 3, (12,))
    transfer.fine_tune(
        model,
        X,
        y,
        5,
        torch.optim.Adam(model[2].parameters(), lr=0.01),
        batch_size=4,
        frozen=model[0],
    )
    # weights and BN statistics
    assert all(torch.equal(before[k], v) for k, v in model[0].state_dict().items())
    assert not torch.equal(model[2].weight, head_before) and not model.training


def test_fine_tune_rejects_bad_input():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="expected a positive integer number of steps, got 0"):
        transfer.fine_tune(model, torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), 0, opt)
    with pytest.raises(
        ValueError,
        match="expected as many labels as examples \\(at least one\\), got 2 examples and 3 labels",
    ):
        transfer.fine_tune(model, torch.zeros(2, 2), torch.zeros(3, dtype=torch.long), 1, opt)


# --- heads ---------------------------------------------------------------------------------------


def test_replace_head_of_a_sequential_and_of_a_resnet_like_model():
    model = _small_cnn()
    head = transfer.replace_head(model, 7)
    assert (
        model[-1] is head
        and head.in_features == 64
        and model(torch.rand(2, 1, 8, 8)).shape == (2, 7)
    )

    class WithFc(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc = nn.Flatten(), nn.Linear(4, 1000)

        def forward(self, x):
            return self.fc(self.body(x))

    net = WithFc()
    assert transfer.replace_head(net, 2) is net.fc and net(torch.rand(3, 2, 2)).shape == (3, 2)


def test_replace_head_rejects_other_models_and_bad_sizes():
    with pytest.raises(
        TypeError,
        match=(
            "expected a model with a linear .fc or an nn.Sequential ending in nn.Linear, got ReLU"
        ),
    ):
        transfer.replace_head(nn.ReLU(), 3)
    with pytest.raises(TypeError, match="got Sequential"):
        transfer.replace_head(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 3)
    with pytest.raises(ValueError, match="expected a positive integer num_classes, got 0"):
        transfer.replace_head(nn.Sequential(nn.Linear(2, 2)), 0)


# --- the ResNet-18 recipe, with random weights ----------------------------------------------------


def test_resnet18_transfer_with_random_weights_has_a_new_head_and_imagenet_preprocessing():
    model, preprocess = transfer.resnet18_transfer(5, weights=None)
    assert model.fc.out_features == 5 and model.fc.in_features == 512
    images = torch.rand(2, 3, 32, 48)
    x = preprocess(images)
    assert x.shape == (2, 3, 224, 224)
    expected = ResNet18_Weights.DEFAULT.transforms()
    assert (
        preprocess.crop_size == expected.crop_size == [224]
        and preprocess.resize_size == expected.resize_size
    )
    torch.testing.assert_close(
        preprocess(torch.full((1, 3, 8, 8), 0.5))[0, :, 0, 0],
        (0.5 - torch.tensor(expected.mean)) / torch.tensor(expected.std),
    )
    assert model(x).shape == (2, 5)


def test_resnet18_transfer_loads_the_default_weights_from_the_one_cache_with_a_timeout(
    empty_cache, monkeypatch
):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    seen = []
    monkeypatch.setattr(data, "pretrained", lambda w, timeout: seen.append((w, timeout)) or state)
    model, _ = transfer.resnet18_transfer(3, timeout=12.0)
    assert seen == [(ResNet18_Weights.DEFAULT, 12.0)] and model.fc.out_features == 3
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(
        ValueError,
        match=(
            "expected ResNet18_Weights, 'DEFAULT', one of IMAGENET1K_V1, or None; got "
            "'NOT_A_WEIGHT'"
        ),
    ):
        transfer.resnet18_transfer(3, weights="NOT_A_WEIGHT")
    with pytest.raises(TypeError, match="expected a number for timeout, got '5'"):
        transfer.resnet18_transfer(3, timeout="5")


@pytest.fixture(scope="module")
def tiny_images():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 0, 1])), (
        torch.rand(2, 3, 32, 32, generator=g),
        torch.tensor([0, 1]),
    )


@pytest.mark.parametrize("method", transfer.RESNET_METHODS)
def test_resnet18_few_shot_runs_every_method_with_random_weights(method, tiny_images):
    train, test = tiny_images
    accuracy = transfer.resnet18_few_shot(
        method, train, test, num_classes=2, steps=1, weights=None, device=torch.device("cpu")
    )
    assert accuracy in (0.0, 0.5, 1.0)


def test_resnet_linear_probe_trains_only_the_head_and_keeps_bn_statistics(tiny_images):
    torch.manual_seed(0)
    model, preprocess = transfer.resnet18_transfer(2, weights=None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups, frozen = transfer._resnet_groups(model, "linear probe")
    assert [p for g in groups for p in g["params"]] == list(model.fc.parameters())
    transfer.fine_tune(
        nn.Sequential(preprocess, model),
        *tiny_images[0],
        2,
        torch.optim.Adam(groups),
        batch_size=2,
        frozen=frozen,
    )
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}


def test_resnet_fine_tune_and_scratch_groups():
    model, _ = transfer.resnet18_transfer(2, weights=None)
    groups, frozen = transfer._resnet_groups(model, "fine-tune")
    assert frozen is None and len(groups) == 6
    np.testing.assert_allclose([g["lr"] for g in groups], [1e-3 / 2.6**k for k in range(5, -1, -1)])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    groups, frozen = transfer._resnet_groups(model, "from scratch")
    assert frozen is None and [g["lr"] for g in groups] == [3e-3]


def test_resnet18_few_shot_rejects_unknown_methods(tiny_images):
    with pytest.raises(
        ValueError,
        match="expected a method in \\('from scratch', 'linear probe', 'fine-tune'\\), got 'probe'",
    ):
        transfer.resnet18_few_shot("probe", *tiny_images, num_classes=2, weights=None)


# --- is the network there? ---------------------------------------------------------------------


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_HOME", str(tmp_path))
    return tmp_path


def test_weights_unavailable_offline_without_touching_the_network(empty_cache, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    monkeypatch.setattr(
        transfer.urllib.request,
        "urlopen",
        lambda *a, **k: pytest.fail("network used while offline"),
    )
    assert transfer.imagenet_weights_available() is False


def test_weights_available_from_the_weights_cache(empty_cache, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    path = data.pretrained_path(ResNet18_Weights.DEFAULT)
    assert path.parent == empty_cache / "weights"
    path.parent.mkdir()
    path.write_bytes(b"x")
    assert transfer.imagenet_weights_available() is True


def test_weights_availability_asks_the_server_with_a_timeout(empty_cache, monkeypatch):
    monkeypatch.delenv("VISIONBOOK_OFFLINE", raising=False)
    calls = []

    class Response:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def reachable(request, timeout):
        calls.append((request.get_method(), request.full_url, timeout))
        return Response()

    monkeypatch.setattr(transfer.urllib.request, "urlopen", reachable)
    assert transfer.imagenet_weights_available(timeout=2.0) is True
    assert calls == [("HEAD", ResNet18_Weights.DEFAULT.url, 2.0)]

    def unreachable(request, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(transfer.urllib.request, "urlopen", unreachable)
    assert transfer.imagenet_weights_available() is False


def test_resnet18_transfer_checks_num_classes_before_any_download(monkeypatch):
    import torchvision.models

    monkeypatch.setattr(
        torchvision.models,
        "resnet18",
        lambda weights=None: pytest.fail("resnet18 built before the check"),
    )
    for bad in (0, -1, 2.5, True):
        with pytest.raises(
            ValueError, match=f"expected a positive integer num_classes, got {bad!r}"
        ):
            transfer.resnet18_transfer(bad)


def test_resnet18_transfer_offline_without_cached_weights_fails_before_the_network(
    empty_cache, monkeypatch
):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: pytest.fail("network used while offline")
    )
    path = data.pretrained_path(ResNet18_Weights.DEFAULT)
    with pytest.raises(
        data.DataUnavailableError,
        match=(
            "the weights ResNet18_Weights.IMAGENET1K_V1 are not cached and VISIONBOOK_OFFLINE=1 "
            f"switches the network off: unset it, or put the file from https://download.pytorch"
            f".org/models/resnet18-f37072fd.pth at {path}"
        ),
    ):
        transfer.resnet18_transfer(10)


def test_resnet18_transfer_random_weights_need_no_file(empty_cache, monkeypatch):
    monkeypatch.setenv("VISIONBOOK_OFFLINE", "1")
    monkeypatch.setattr(data, "pretrained", lambda *a, **k: pytest.fail("weights fetched"))
    model, _ = transfer.resnet18_transfer(3, weights=None)
    assert model.fc.out_features == 3 and list((empty_cache).iterdir()) == []


# --- transfer from the offline ImageNet network ---------------------------------------------------


def test_texture_patches_split_each_photograph_into_left_train_and_right_test_halves():
    # 4 rows, 10 columns: halves of 5
    photo = torch.arange(4 * 10, dtype=torch.float32).reshape(1, 4, 10)
    (X, y), (X_test, y_test) = transfer.texture_patches([photo, photo + 100], 2)
    # 2 rows x 2 columns of patches per half
    assert X.shape == (8, 1, 2, 2) and X_test.shape == (8, 1, 2, 2)
    assert y.tolist() == y_test.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # column 4 is left over
    assert X[0, 0].tolist() == [[0, 1], [10, 11]] and X[1, 0].tolist() == [[2, 3], [12, 13]]
    assert X[2, 0].tolist() == [[20, 21], [30, 31]]
    assert X_test[0, 0].tolist() == [[5, 6], [15, 16]] and X_test[1, 0].tolist() == [
        [7, 8],
        [17, 18],
    ]
    assert X[4, 0, 0, 0] == 100 and X_test[4, 0, 0, 0] == 105
    train_columns = {int(v) % 10 for v in X[:4].flatten()}
    test_columns = {int(v) % 10 for v in X_test[:4].flatten()}
    assert max(train_columns) < 5 <= min(test_columns)  # no column in both


def test_texture_patches_of_the_bundled_photographs():
    photos = [data.sample_image(name) for name in ("brick", "grass", "gravel")]
    (X, y), (X_test, y_test) = transfer.texture_patches(photos, 64)
    assert X.shape == X_test.shape == (96, 1, 64, 64) and torch.bincount(y).tolist() == [32, 32, 32]
    torch.testing.assert_close(X_test[0], photos[0][:, :64, 256:320])


def test_texture_patches_rejects_bad_input():
    with pytest.raises(ValueError, match="expected a positive integer patch size, got 0"):
        transfer.texture_patches([torch.zeros(1, 8, 8)], 0)
    with pytest.raises(
        ValueError, match=r"expected a non-empty sequence of \(C, H, W\) images, got \[\]"
    ):
        transfer.texture_patches([], 2)
    with pytest.raises(ValueError, match=r"expected a non-empty sequence of \(C, H, W\) images"):
        transfer.texture_patches([torch.zeros(8, 8)], 2)
    with pytest.raises(
        ValueError,
        match=r"expected images with the same number of channels, got \[\(1, 8, 8\), \(3, 8, 8\)\]",
    ):
        transfer.texture_patches([torch.zeros(1, 8, 8), torch.zeros(3, 8, 8)], 2)
    with pytest.raises(
        ValueError, match=r"expected images of at least 4 x 8 pixels, got \(1, 8, 6\)"
    ):
        transfer.texture_patches([torch.zeros(1, 8, 6)], 4)
    with pytest.raises(
        ValueError, match=r"expected images of at least 4 x 8 pixels, got \(1, 3, 8\)"
    ):
        transfer.texture_patches([torch.zeros(1, 3, 8)], 4)


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(0)
    return imagenet.efficientnet_lite0().eval()


def test_imagenet_features_preprocess_then_run_the_trunk_in_eval_mode(lite0):
    X = torch.rand(5, 1, 25, 25)
    lite0.train()
    feats = transfer.imagenet_features(lite0[:-2], X, size=64, batch_size=2)
    assert not lite0.stem.training and not lite0.head[1].training  # the trunk was put in eval mode
    with torch.no_grad():
        expected = lite0[:-2](imagenet.preprocess(X, size=64))
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=0)
    assert feats.shape == (5, 1280) and not feats.requires_grad
    assert transfer.imagenet_features(lite0[:8], X, size=64).shape == (5, 320, 2, 2)


def test_imagenet_features_rejects_bad_images(lite0):
    with pytest.raises(
        ValueError, match=r"expected images \(N, 1, H, W\) or \(N, 3, H, W\), got \(1, 25, 25\)"
    ):
        transfer.imagenet_features(lite0[:-2], torch.rand(1, 25, 25))
    with pytest.raises(ValueError, match=r"got \(2, 2, 8, 8\)"):
        transfer.imagenet_features(lite0[:-2], torch.rand(2, 2, 8, 8))
    with pytest.raises(TypeError, match="expected images as a torch.Tensor, got ndarray"):
        transfer.imagenet_features(lite0[:-2], np.zeros((1, 1, 8, 8)))


def test_split_at_gives_a_shared_frozen_bottom_and_a_copied_top_with_a_new_head(lite0):
    bottom, top = transfer.split_at(lite0, "head", 3)
    assert [n for n, _ in bottom.named_children()] == ["stem", *(f"stage{i}" for i in range(1, 8))]
    assert [n for n, _ in top.named_children()] == ["head", "pool", "flatten", "dropout", "fc"]
    assert bottom.stem is lite0.stem and top.head is not lite0.head  # shared bottom, copied top
    assert top.fc.out_features == 3 and lite0.fc.out_features == 1000
    x = imagenet.preprocess(torch.rand(2, 3, 40, 40), size=64)
    with torch.no_grad():
        # same features, new last layer
        torch.testing.assert_close(top[:-1](bottom(x)), lite0[:-1](x))
        top.head[0].weight.add_(1.0)
    # training the copy leaves the model alone
    assert not torch.equal(top.head[0].weight, lite0.head[0].weight)


def test_split_at_by_hand_and_bad_input():
    from collections import OrderedDict

    net = nn.Sequential(OrderedDict(a=nn.Linear(4, 3), b=nn.ReLU(), c=nn.Linear(3, 10)))
    bottom, top = transfer.split_at(net, "c", 2)
    assert list(bottom) == [net.a, net.b] and top.c.in_features == 3 and top.c.out_features == 2
    with pytest.raises(
        TypeError, match="expected an nn.Sequential with named children, got Linear"
    ):
        transfer.split_at(nn.Linear(2, 2), "a", 2)
    with pytest.raises(
        ValueError,
        match=r"expected the name of a child after the first, one of \['b', 'c'\], got 'a'",
    ):
        transfer.split_at(net, "a", 2)
    with pytest.raises(ValueError, match="got 'fc'"):
        transfer.split_at(net, "fc", 2)
    with pytest.raises(TypeError, match="an nn.Sequential ending in nn.Linear, got Sequential"):
        transfer.split_at(nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.ReLU())), "b", 2)
    with pytest.raises(ValueError, match="expected a positive integer num_classes, got 0"):
        transfer.split_at(net, "b", 0)
