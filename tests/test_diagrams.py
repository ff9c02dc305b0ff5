"""visionbook.diagrams: labels read from the real modules, readable layout, clear errors."""

import itertools

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from visionbook import blocks, detect, generative, models
from visionbook.attention import ViT
from visionbook.diagrams import (
    block_diagram,
    data_parallel_diagram,
    dataloader_diagram,
    flow_diagram,
    gan_diagram,
    layer_diagram,
    mlp_diagram,
    neuron_diagram,
    vit_diagram,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def _shapes_by_hand(model: nn.Sequential, shape: tuple[int, ...]) -> list[str]:
    x, out = torch.zeros(1, *shape), []
    for layer in model:
        x = layer(x)
        out.append("×".join(map(str, x.shape[1:])))
    return out


def _check_layout(fig: Figure) -> None:
    """Text at least 8 pt, inside the figure, no two labels overlapping, box labels inside
    their box."""
    fig.canvas.draw()
    renderer, ax = fig.canvas.get_renderer(), fig.axes[0]
    texts = [t for t in ax.texts if t.get_text().strip()]
    boxes = [t.get_window_extent(renderer).shrunk(0.98, 0.9) for t in texts]
    assert min(t.get_fontsize() for t in texts) >= 8
    page = fig.bbox
    for t, b in zip(texts, boxes):
        assert page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1, (
            t.get_text()
        )
    for (t1, b1), (t2, b2) in itertools.combinations(zip(texts, boxes), 2):
        assert not b1.overlaps(b2), f"{t1.get_text()!r} overlaps {t2.get_text()!r}"
    for patch in (p for p in ax.patches if isinstance(p, FancyBboxPatch)):
        frame = patch.get_window_extent(renderer)
        inside = [
            (t, b)
            for t, b in zip(texts, boxes)
            if frame.contains(*ax.transData.transform(t.get_position()))
        ]
        for t, b in inside:
            assert (
                frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
            ), t.get_text()


# --- layer diagrams -----------------------------------------------------------------------------


def test_lenet_boxes_name_the_layers_and_their_real_output_shapes():
    model = models.lenet()
    fig = layer_diagram(model, (1, 28, 28))
    assert isinstance(fig, Figure) and fig.get_size_inches()[0] == pytest.approx(10)
    texts = _texts(fig)
    assert "Conv2d\n1→6, 5×5\n+ ReLU" in texts and "Conv2d\n6→16, 5×5\n+ ReLU" in texts
    assert (
        "MaxPool2d\n2×2" in texts
        and "Linear\n400→120\n+ ReLU" in texts
        and "Linear\n84→10" in texts
    )
    by_hand = _shapes_by_hand(model, (1, 28, 28))  # 6×28×28, ..., 10
    assert ["6×28×28", "6×14×14", "16×10×10", "16×5×5", "400", "120", "84", "10"] == [
        by_hand[i] for i in (1, 2, 4, 5, 6, 8, 10, 11)
    ]
    notes = [t for t in texts if "×" in t and "\n" not in t or t.isdigit()]
    assert notes == [
        "1×28×28",
        "6×28×28",
        "6×14×14",
        "16×10×10",
        "16×5×5",
        "400",
        "120",
        "84",
        "10",
    ]
    _check_layout(fig)


def test_a_change_of_the_model_changes_the_picture():
    wide = _texts(layer_diagram(models.lenet(width=2), (1, 28, 28)))
    assert "12×28×28" in wide and "Conv2d\n1→12, 5×5\n+ ReLU" in wide and "6×28×28" not in wide
    bn = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)
    )
    assert "Conv2d\n1→16, 5×5\n+ BN, ReLU" in _texts(layer_diagram(bn, (1, 28, 28)))
    assert "16×28×28" in _texts(layer_diagram(bn, (1, 28, 28)))


def test_merge_false_draws_every_layer_and_the_mlp_flattens():
    model = models.mlp(784, (256, 128), 10)
    texts = _texts(layer_diagram(model, (1, 28, 28), merge=False))
    assert (
        texts.count("ReLU") == 2
        and "Flatten" in texts
        and "Linear\n784→256" in texts
        and "784" in texts
    )


def test_the_model_keeps_its_training_mode():
    model = models.small_cnn(3).train()
    layer_diagram(model, (3, 16, 16))
    assert model.training


def test_detector_heads_share_one_column():
    fig = layer_diagram(detect.CenterNet(5), (3, 64, 64), title="CenterNet")
    heads = [
        t for t in fig.axes[0].texts if t.get_text().split("\n")[0] in ("heatmap", "size", "offset")
    ]
    assert [t.get_text() for t in heads] == [
        "heatmap\nConv2d\n48→5, 1×1",
        "size\nConv2d\n48→2, 1×1",
        "offset\nConv2d\n48→2, 1×1",
    ]
    assert (
        len({round(t.get_position()[0], 6) for t in heads}) == 1
        and len({t.get_position()[1] for t in heads}) == 3
    )
    texts = _texts(fig)
    assert (
        texts.count("2×16×16") == 2
        and "5×16×16" in texts
        and "Conv2d\n48→48, 3×3\ndilation 4\n+ BN, ReLU" in texts
    )
    _check_layout(fig)


def test_named_modules_and_wrapped_rows():
    from visionbook import imagenet

    texts = _texts(layer_diagram(detect.CenterNet(3), (3, 32, 32), modules=["backbone", "heatmap"]))
    assert texts[2:5] == ["backbone\nSequential\n18 layers", "48×8×8", "heatmap\nConv2d\n48→3, 1×1"]
    fig = layer_diagram(imagenet.efficientnet_lite0(), (3, 224, 224), expand=False)
    texts = _texts(fig)
    assert "stage6\n4 × MBConv" in texts and "192×7×7" in texts and "1000" in texts
    _check_layout(fig)


def test_gan_diagram_reads_both_networks():
    fig = gan_diagram(
        generative.dcgan_generator(64, channels=48), generative.dcgan_discriminator(channels=16), 64
    )
    texts = _texts(fig)
    assert (
        "48×7×7" in texts
        and "24×14×14" in texts
        and "1 logit" in texts
        and "Linear\n1568→1" in texts
    )
    assert texts.count("1×28×28") == 2  # the generator's output is the discriminator's input
    _check_layout(fig)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: layer_diagram("lenet", (1, 28, 28)),
            TypeError,
            "expected model as an nn.Module, got str",
        ),
        (
            lambda: layer_diagram(models.lenet(), [1, 28, 28]),
            ValueError,
            "expected input_shape as a tuple",
        ),
        (
            lambda: layer_diagram(models.lenet(), (1, 0, 28)),
            ValueError,
            "expected input_shape as a tuple",
        ),
        (
            lambda: layer_diagram(models.lenet(), (3, 28, 28)),
            ValueError,
            "expected an input_shape the model accepts",
        ),
        (
            lambda: layer_diagram(models.lenet(), (1, 28, 28), modules="0"),
            TypeError,
            "expected modules as a list",
        ),
        (
            lambda: layer_diagram(models.lenet(), (1, 28, 28), modules=["99"]),
            ValueError,
            "expected names of submodules",
        ),
        (
            lambda: gan_diagram(nn.Linear(2, 4), nn.Linear(4, 1), 0),
            ValueError,
            "expected a positive integer z_dim",
        ),
        (
            lambda: gan_diagram(nn.Linear(2, 4), "D", 2),
            TypeError,
            "expected discriminator as an nn.Module, got str",
        ),
    ],
)
def test_layer_diagram_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- blocks -------------------------------------------------------------------------------------


def test_basic_block_with_projection_and_identity():
    fig = block_diagram(blocks.BasicBlock(16, 32, stride=2), (16, 16, 16))
    texts = _texts(fig)
    assert "projection: conv 16→32, 1×1, stride 2, BN" in texts and "add\n+ ReLU" in texts
    assert "Conv2d\n16→32, 3×3\nstride 2\n+ BN, ReLU" in texts and texts.count("32×8×8") == 3
    _check_layout(fig)
    assert "identity" in _texts(block_diagram(blocks.BasicBlock(16, 16), (16, 8, 8)))
    plain = block_diagram(blocks.BasicBlock(16, 16, residual=False), (16, 8, 8))
    assert "identity" not in _texts(plain) and "BasicBlock without a shortcut" in _texts(plain)


def test_mbconv_reads_expansion_depthwise_se_and_projection():
    fig = block_diagram(blocks.MBConv(16, 16, expand_ratio=4), (16, 16, 16))
    texts = _texts(fig)
    assert texts[2:9:2] == [
        "Conv2d\n16→64, 1×1\n+ BN, SiLU",
        "Conv2d\n64→64, 3×3\ndepthwise\n+ BN, SiLU",
        "SqueezeExcite\n64→4→64",
        "Conv2d\n64→16, 1×1\n+ BN",
    ]
    assert "identity" in texts and "add" in texts
    _check_layout(fig)
    strided = _texts(block_diagram(blocks.MBConv(16, 24, 6, 2, se_ratio=0), (16, 16, 16)))
    assert (
        "add" not in strided
        and "24×8×8" in strided
        and not any("SqueezeExcite" in t for t in strided)
    )


def test_convnext_block_reads_depthwise_layernorm_gelu_and_layer_scale():
    fig = block_diagram(blocks.ConvNeXtBlock(16), (16, 8, 8))
    texts = _texts(fig)
    assert texts[2:7:2] == [
        "Conv2d\n16→16, 7×7\ndepthwise\n+ LN",
        "Conv2d\n16→64, 1×1\n+ GELU",
        "Conv2d\n64→16, 1×1",
    ]
    assert "× γ (layer scale)\nthen add" in texts and "identity" in texts and "64×8×8" in texts
    _check_layout(fig)
    plain = _texts(block_diagram(blocks.ConvNeXtBlock(16, layer_scale=0), (16, 8, 8)))
    assert "add" in plain and not any("γ" in t for t in plain)


def test_dense_layer_and_block_show_the_concatenation_growing():
    texts = _texts(block_diagram(blocks.DenseLayer(16, 8), (16, 8, 8)))
    assert "concat" in texts and "copy" in texts and "24×8×8" in texts and "8×8×8" in texts
    fig = block_diagram(blocks.dense_block(16, growth=8, num_layers=4), (16, 8, 8))
    texts = _texts(fig)
    assert [t for t in texts if t.isdigit()] == ["16", "24", "32", "40", "48"]
    assert "layer 3\n1×1: 32→32\n3×3: 32→8" in texts and texts.count("copy") == 4
    _check_layout(fig)


def test_block_diagram_errors():
    with pytest.raises(TypeError, match="expected a block with a .body"):
        block_diagram(nn.Linear(2, 2), (2,))
    with pytest.raises(ValueError, match="expected an input_shape the model accepts, got"):
        block_diagram(blocks.BasicBlock(4, 4), (4, 8))  # (H, W) without C
    with pytest.raises(ValueError, match="expected input_shape as a tuple"):
        block_diagram(blocks.MBConv(4, 4), [4, 8, 8])


# --- flows, neurons, MLPs, ViT --------------------------------------------------------------------

LOOP = [
    "batch (X, y)",
    "forward\nlogits = model(X)",
    "loss\ncross_entropy(logits, y)",
    "backward\nloss.backward()",
    "step",
]


def test_flow_diagram_cycle_skip_and_notes():
    fig = flow_diagram(LOOP, title="training", cycle=True)
    assert _texts(fig)[1:] == LOOP
    _check_layout(fig)
    fig = flow_diagram(["x", "conv", "conv", "+"], skip=(0, 3, "+ x"), notes=["a", "b", "c", "d"])
    assert _texts(fig) == ["x", "a", "conv", "b", "conv", "c", "+", "d", "+ x"]
    _check_layout(fig)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(steps="abc"), TypeError, "expected steps as a list of strings"),
        (dict(steps=[]), ValueError, "expected at least one of the steps"),
        (dict(steps=["a", 1]), TypeError, "expected steps as a list of strings"),
        (
            dict(steps=["a", "b"], notes=["n"]),
            ValueError,
            "expected one note per step, got 1 notes for 2 steps",
        ),
        (dict(steps=["a", "b"], skip=(1, 0, "s")), ValueError, r"expected skip as \(i, j, label\)"),
        (dict(steps=["a", "b"], skip=(0, 5, "s")), ValueError, r"expected skip as \(i, j, label\)"),
        (
            dict(steps=["a long step " * 3] * 12, skip=(0, 11, "s")),
            ValueError,
            "expected the ends of a skip in one row",
        ),
    ],
)
def test_flow_diagram_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        flow_diagram(**kwargs)


def test_dataloader_diagram_reads_the_loader():
    data = TensorDataset(torch.zeros(1137, 1, 8, 8), torch.zeros(1137, dtype=torch.long))
    fig = dataloader_diagram(DataLoader(data, batch_size=64, shuffle=True))
    texts = _texts(fig)
    assert (
        "RandomSampler\nshuffled: 0 … 1136" in texts
        and "BatchSampler\ngroups of B = 64 indices" in texts
    )
    assert (
        "18 batches per epoch (17 × 64 + 49)" in texts
        and "X: 64×1×8×8,  y: 64" in texts
        and "x_i: 1×8×8" in texts
    )
    _check_layout(fig)
    texts = _texts(dataloader_diagram(DataLoader(data, batch_size=100, drop_last=True)))
    assert (
        "SequentialSampler\nin order: 0 … 1136" in texts
        and "11 batches per epoch (37 items dropped)" in texts
    )

    class Noisy(TensorDataset):  # an augmenting data set draws random numbers when an item is read
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + torch.rand(x.shape), y

    state = torch.get_rng_state()
    dataloader_diagram(DataLoader(Noisy(*data.tensors), batch_size=64))
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(
        TypeError, match="expected a torch DataLoader with a batch_size, got TensorDataset"
    ):
        dataloader_diagram(data)
    with pytest.raises(ValueError, match=r"expected data set items \(x, y\)"):
        dataloader_diagram(DataLoader(TensorDataset(torch.zeros(4, 2)), batch_size=2))


def test_neuron_diagram():
    fig = neuron_diagram(4, activation="sign")
    texts = _texts(fig)
    assert (
        "$x_4$" in texts
        and "$w_4$" in texts
        and "sign" in texts
        and r"$\Sigma$" in texts
        and "$b$" in texts
    )
    _check_layout(fig)
    with pytest.raises(ValueError, match="expected n_inputs as an integer from 1 to 8, got 0"):
        neuron_diagram(0)
    with pytest.raises(TypeError, match="expected the activation's name as a non-empty string"):
        neuron_diagram(2, activation=None)


def test_mlp_diagram_from_a_model_or_widths():
    fig = mlp_diagram(models.mlp(784, (256, 128), 10))
    texts = _texts(fig)
    assert [t for t in texts if "\n" in t] == [
        "input\n784",
        "hidden 1\n256 + ReLU",
        "hidden 2\n128 + ReLU",
        "output\n10",
    ]
    assert texts.count("⋮") == 4  # every layer is wider than 6 neurons
    _check_layout(fig)
    assert _texts(mlp_diagram((2, 3, 1))) == ["input\n2", "hidden 1\n3", "output\n1"]
    with pytest.raises(ValueError, match="expected a model with Linear layers"):
        mlp_diagram(nn.Sequential(nn.ReLU()))
    with pytest.raises(
        TypeError, match="expected an nn.Module with Linear layers or at least two positive widths"
    ):
        mlp_diagram((3,))
    with pytest.raises(ValueError, match="expected an integer max_nodes of at least 3"):
        mlp_diagram((2, 3), max_nodes=2)


def test_vit_diagram_reads_the_model():
    fig = vit_diagram(ViT(28, 7, dim=64, depth=2, heads=4, mlp_ratio=2))
    texts = _texts(fig)
    assert "cut into patches\n4×4 grid of 7×7" in texts and "patch embedding\nLinear 49→64" in texts
    assert (
        "encoder block\n× 2" in texts
        and "multi-head\nattention\n4 heads" in texts
        and "MLP\n64→128→64\nGELU" in texts
    )
    assert (
        "17×64" in texts and "+ [CLS] token\n+ learned positions" in texts and "10 logits" in texts
    )
    _check_layout(fig)
    other = _texts(vit_diagram(ViT(28, 4, dim=32, depth=3, heads=2, positions="sinusoidal")))
    assert (
        "cut into patches\n7×7 grid of 4×4" in other
        and "50×32" in other
        and "encoder block\n× 3" in other
    )
    assert "+ [CLS] token\n+ sinusoidal positions" in other
    with pytest.raises(TypeError, match="expected a visionbook.attention.ViT, got Linear"):
        vit_diagram(nn.Linear(2, 2))


def test_the_layout_check_catches_overlaps_small_text_and_overflow():
    fig = plt.figure(figsize=(4, 2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.text(0.5, 0.5, "hello world", fontsize=9)
    ax.text(0.55, 0.5, "overlap", fontsize=9)
    with pytest.raises(AssertionError, match="overlaps"):
        _check_layout(fig)
    fig = plt.figure(figsize=(4, 2))
    fig.add_axes((0, 0, 1, 1)).text(0.5, 0.5, "tiny", fontsize=6)
    with pytest.raises(AssertionError):
        _check_layout(fig)
    fig = plt.figure(figsize=(4, 2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.add_patch(FancyBboxPatch((0.4, 0.4), 0.1, 0.2, boxstyle="round,pad=0"))
    ax.text(0.45, 0.5, "a label far too long for its box", ha="center", fontsize=9)
    with pytest.raises(AssertionError, match="far too long"):
        _check_layout(fig)


def test_data_parallel_diagram_shows_a_shard_and_a_worker_per_process():
    fig = data_parallel_diagram(3, 96, title="three workers")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sum(t.startswith("shard") for t in texts) == 3 and "shard 2\n32 images" in texts
    assert "worker (rank) 0\nreplica of the model" in texts and "three workers" in texts
    assert any("2(p-1)/p" in t for t in texts)
    plt.close(fig)
    with pytest.raises(ValueError, match="got 3 workers and a batch of 64"):
        data_parallel_diagram(3, 64)
    with pytest.raises(ValueError, match="expected 2 to 8 workers"):
        data_parallel_diagram(9, 90)
    with pytest.raises(ValueError, match="expected an integer world_size of at least 2, got 1"):
        data_parallel_diagram(1, 64)
    with pytest.raises(TypeError, match="expected an integer batch_size"):
        data_parallel_diagram(2, 6.0)
