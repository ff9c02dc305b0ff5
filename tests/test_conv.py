"""Tests of visionbook.conv: hand-computed cases, and every from-scratch operation against
PyTorch."""

import pytest
import torch
import torch.nn.functional as F
from scipy.signal import correlate2d
from torch import nn

from visionbook.conv import (
    CLASSIC_KERNELS,
    avg_pool2d,
    classic_kernel,
    conv2d_im2col,
    conv2d_loops,
    conv_output_size,
    filter_image,
    im2col,
    max_pool2d,
    receptive_fields,
    translate,
    windows,
    zero_pad,
)

# (N, C, H, W, O, kh, kw, stride, padding, dilation)
CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1),
    (2, 3, 8, 7, 4, 3, 3, 1, 1, 1),
    (2, 3, 9, 9, 5, 3, 3, 2, 1, 1),
    (1, 2, 10, 12, 3, 5, 5, 1, 2, 1),
    (3, 4, 11, 9, 2, 3, 3, 1, 2, 2),
    (2, 2, 12, 10, 3, 2, 4, (2, 3), (0, 1), (1, 2)),
    (1, 8, 6, 6, 16, 1, 1, 1, 0, 1),
    (2, 1, 28, 28, 6, 5, 5, 1, 2, 1),
    (1, 3, 7, 9, 2, 7, 7, 3, 3, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("conv", [conv2d_loops, conv2d_im2col])
def test_conv_matches_pytorch(conv, case):
    n, c, h, w, o, kh, kw, stride, padding, dilation = case
    g = torch.Generator().manual_seed(0)
    x, weight, bias = (
        torch.randn(n, c, h, w, generator=g),
        torch.randn(o, c, kh, kw, generator=g),
        torch.randn(o, generator=g),
    )
    ours = conv(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    ref = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= 1e-5
    ours64 = conv(
        x.double(), weight.double(), None, stride=stride, padding=padding, dilation=dilation
    )
    ref64 = F.conv2d(
        x.double(), weight.double(), None, stride=stride, padding=padding, dilation=dilation
    )
    assert torch.allclose(ours64, ref64, atol=1e-12, rtol=0)


def test_conv_by_hand():
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]]).view(1, 1, 3, 3)
    k = torch.tensor([[1.0, -1.0], [2.0, 0.0]]).view(1, 1, 2, 2)
    # top-left: 1*1 + 2*(-1) + 0*2 + 1*0 = -1; top-right: 2 - 0 + 2 + 0 = 4; ...
    expected = [[-1.0, 4.0], [3.0, 0.0]]
    assert conv2d_loops(x, k).view(2, 2).tolist() == expected
    assert conv2d_im2col(x, k).view(2, 2).tolist() == expected
    assert conv2d_loops(x, k, torch.tensor([10.0])).view(2, 2).tolist() == [
        [9.0, 14.0],
        [13.0, 10.0],
    ]


def test_cross_correlation_matches_scipy_and_convolution_flips_the_kernel():
    g = torch.Generator().manual_seed(1)
    x, k = (
        torch.randn(6, 7, generator=g, dtype=torch.float64),
        torch.randn(3, 3, generator=g, dtype=torch.float64),
    )
    ours = conv2d_loops(x.view(1, 1, 6, 7), k.view(1, 1, 3, 3)).view(4, 5)
    assert torch.allclose(
        ours, torch.from_numpy(correlate2d(x.numpy(), k.numpy(), mode="valid")), atol=1e-12
    )


def test_conv_runs_on_the_inputs_device_and_dtype():
    x, k = torch.ones(1, 1, 4, 4, dtype=torch.float64), torch.ones(1, 1, 3, 3, dtype=torch.float64)
    for conv in (conv2d_loops, conv2d_im2col):
        out = conv(x, k)
        assert out.dtype == torch.float64 and out.device == x.device
        assert out.flatten().tolist() == [9.0] * 4


@pytest.mark.parametrize(
    "size, k, s, p, d, expected",
    [
        (28, 5, 1, 0, 1, 24),
        (28, 5, 1, 2, 1, 28),
        (32, 3, 2, 1, 1, 16),
        (224, 7, 2, 3, 1, 112),
        (7, 3, 1, 0, 2, 3),
        (5, 5, 1, 0, 1, 1),
        (6, 2, 2, 0, 1, 3),
        (7, 2, 2, 0, 1, 3),
    ],
)
def test_conv_output_size_by_hand(size, k, s, p, d, expected):
    assert conv_output_size(size, k, s, p, d) == expected


def test_conv_output_size_matches_pytorch_on_a_grid():
    for size in (5, 8, 13):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in (0, 1, 2):
                    for d in (1, 2):
                        if size + 2 * p < d * (k - 1) + 1:
                            continue
                        out = F.conv2d(
                            torch.zeros(1, 1, size, size),
                            torch.zeros(1, 1, k, k),
                            stride=s,
                            padding=p,
                            dilation=d,
                        )
                        assert conv_output_size(size, k, s, p, d) == out.shape[-1], (
                            size,
                            k,
                            s,
                            p,
                            d,
                        )


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="kernel's span 5 to fit in the padded input of length 4"):
        conv_output_size(4, 5)
    with pytest.raises(ValueError, match="expected stride to be an integer >= 1, got 0"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(ValueError, match="expected padding to be an integer >= 0, got -1"):
        conv_output_size(8, 3, padding=-1)
    with pytest.raises(ValueError, match="expected size to be an integer >= 1, got 2.5"):
        conv_output_size(2.5, 1)


def test_conv_input_errors():
    x, k = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\), got \(5, 5\)"):
        conv2d_loops(torch.zeros(5, 5), k)
    with pytest.raises(
        ValueError,
        match=(
            r"expected weight of shape \(O, 2, kh, kw\) for an input with 2 channels, got "
            r"\(3, 1, 3, 3\)"
        ),
    ):
        conv2d_im2col(x, torch.zeros(3, 1, 3, 3))
    with pytest.raises(ValueError, match=r"expected bias of shape \(3,\), got \(2,\)"):
        conv2d_loops(x, k, torch.zeros(2))
    with pytest.raises(
        ValueError, match="expected stride as an integer >= 1 or a pair of them, got 0"
    ):
        conv2d_loops(x, k, stride=0)
    with pytest.raises(
        ValueError, match=r"expected padding as an integer >= 0 or a pair of them, got \(1, 2, 3\)"
    ):
        conv2d_im2col(x, k, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="expected input of shape"):
        windows(torch.zeros(3, 5, 5), 3)


def test_zero_pad_and_windows_by_hand():
    assert zero_pad(torch.tensor([[5.0]]), (1, 0), value=-1.0).tolist() == [[-1.0], [5.0], [-1.0]]
    x = torch.arange(16.0).view(1, 1, 4, 4)
    w = windows(x, 2, stride=2)
    assert w.shape == (1, 1, 4, 2, 2)
    assert w[0, 0, :, 1, 1].tolist() == [10.0, 11.0, 14.0, 15.0]
    assert windows(x, 2, dilation=2)[0, 0, :, 0, 0].tolist() == [0.0, 2.0, 8.0, 10.0]


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [(3, 1, 0, 1), (3, 2, 1, 1), ((2, 3), (1, 2), (1, 0), (2, 1)), (1, 1, 0, 1)],
)
def test_im2col_matches_unfold(kernel, stride, padding, dilation):
    x = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(2))
    ref = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    assert torch.equal(im2col(x, kernel, stride, padding, dilation), ref)


@pytest.mark.parametrize(
    "kernel, stride, padding",
    [(2, None, 0), (3, 1, 0), (3, 2, 1), (2, 1, 1), ((2, 3), (2, 1), (1, 0)), (4, 4, 2)],
)
def test_pooling_matches_pytorch(kernel, stride, padding):
    x = (
        torch.randn(2, 3, 10, 9, generator=torch.Generator().manual_seed(3)) - 2.0
    )  # mostly negative: padding must not win the max
    ref_stride = kernel if stride is None else stride
    assert torch.equal(
        max_pool2d(x, kernel, stride, padding), F.max_pool2d(x, kernel, ref_stride, padding)
    )
    assert torch.allclose(
        avg_pool2d(x, kernel, stride, padding),
        F.avg_pool2d(x, kernel, ref_stride, padding),
        atol=1e-6,
        rtol=0,
    )


def test_pooling_by_hand():
    x = torch.tensor(
        [[1.0, 3.0, 2.0, 0.0], [4.0, -1.0, 5.0, 1.0], [0.0, 0.0, 1.0, 1.0], [2.0, 6.0, 1.0, 1.0]]
    ).view(1, 1, 4, 4)
    assert max_pool2d(x, 2).view(2, 2).tolist() == [[4.0, 5.0], [6.0, 1.0]]
    assert avg_pool2d(x, 2).view(2, 2).tolist() == [[1.75, 2.0], [2.0, 1.0]]
    assert max_pool2d(x, 3, stride=1).view(2, 2).tolist() == [[5.0, 5.0], [6.0, 6.0]]


def test_receptive_fields_by_hand():
    rows = receptive_fields(
        nn.Sequential(
            nn.Conv2d(1, 1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(1, 1, 3, padding=1),
            nn.MaxPool2d(2),
            nn.Conv2d(1, 1, 3, dilation=2),
        )
    )
    assert [r["rf"] for r in rows] == [3, 3, 5, 6, 14]
    assert [r["jump"] for r in rows] == [1, 1, 1, 2, 2]
    assert [r["start"] for r in rows] == [0.0, 0.0, 0.0, 0.5, 4.5]
    assert rows[1]["type"] == "ReLU" and rows[4]["dilation"] == 2
    lenet = [
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]
    assert [r["rf"] for r in receptive_fields(lenet)] == [5, 5, 6, 14, 14, 16]
    assert receptive_fields(nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)))[0]["start"] == 0.0


def test_receptive_field_matches_the_gradients_footprint():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 1, 3, dilation=2),
        nn.AvgPool2d(2),
        nn.Conv2d(1, 1, 3),
    )
    for m in net:
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
    x = torch.rand(1, 1, 48, 48, requires_grad=True)
    out = net(x)
    out[0, 0, 0, 0].backward()
    rows, cols = torch.nonzero(x.grad[0, 0].abs().sum(1)), torch.nonzero(x.grad[0, 0].abs().sum(0))
    last = receptive_fields(net)[-1]
    assert rows.max() - rows.min() + 1 == last["rf"] and cols.max() - cols.min() + 1 == last["rf"]
    assert (rows.max() + rows.min()).item() / 2 == last["start"]


def test_receptive_fields_errors():
    with pytest.raises(
        TypeError, match="expected convolution, pooling or pointwise layers .* got Linear"
    ):
        receptive_fields([nn.Linear(4, 2)])
    with pytest.raises(
        TypeError, match="expected convolution, pooling or pointwise layers .* got Flatten"
    ):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten()))
    with pytest.raises(ValueError, match="expected numeric padding, got padding='same'"):
        receptive_fields([nn.Conv2d(1, 1, 3, padding="same")])
    with pytest.raises(TypeError, match="expected nn.Module layers, got int"):
        receptive_fields([3])


def test_classic_kernels():
    assert set(CLASSIC_KERNELS) >= {
        "sobel x",
        "sobel y",
        "box blur",
        "gaussian blur",
        "sharpen",
        "laplacian",
    }
    sums = {name: classic_kernel(name).sum().item() for name in CLASSIC_KERNELS}
    for name in ("identity", "box blur", "gaussian blur", "sharpen", "emboss"):
        assert sums[name] == pytest.approx(1.0)
    for name in ("sobel x", "sobel y", "laplacian"):
        assert sums[name] == 0.0
    assert torch.equal(classic_kernel("sobel y"), classic_kernel("sobel x").T)
    k = classic_kernel("identity")
    k[1, 1] = 7.0  # a fresh copy each time
    assert classic_kernel("identity")[1, 1] == 1.0
    with pytest.raises(
        ValueError, match="unknown kernel 'sobel'; expected one of identity, box blur"
    ):
        classic_kernel("sobel")


def test_filter_image_by_hand_and_against_scipy():
    step = torch.zeros(1, 5, 6)
    step[..., 3:] = 1.0  # a vertical edge between columns 2 and 3
    edges = filter_image(step, classic_kernel("sobel x"))
    assert edges[0, 2, :].tolist() == [0.0, 0.0, 4.0, 4.0, 0.0, 0.0]
    assert filter_image(step, classic_kernel("sobel y")).abs().max() == 0.0
    assert torch.equal(filter_image(step, classic_kernel("identity")), step)
    img = torch.rand(2, 3, 7, 8, generator=torch.Generator().manual_seed(4))
    k = torch.randn(3, 5, generator=torch.Generator().manual_seed(5))
    out = filter_image(img, k, padding_mode="zeros")
    assert out.shape == img.shape
    ref = correlate2d(img[1, 2].double().numpy(), k.double().numpy(), mode="same", boundary="fill")
    assert torch.allclose(out[1, 2].double(), torch.from_numpy(ref), atol=1e-5)
    blurred = filter_image(torch.full((3, 6, 6), 0.3), classic_kernel("gaussian blur"))
    assert torch.allclose(blurred, torch.full((3, 6, 6), 0.3), atol=1e-6)


def test_filter_image_errors():
    with pytest.raises(
        ValueError, match=r"expected an image \(C, H, W\) or a batch \(N, C, H, W\), got \(5, 5\)"
    ):
        filter_image(torch.zeros(5, 5), classic_kernel("identity"))
    with pytest.raises(ValueError, match=r"expected a 2-D kernel with odd sizes, got \(2, 2\)"):
        filter_image(torch.zeros(1, 5, 5), torch.ones(2, 2))
    with pytest.raises(
        ValueError,
        match="expected padding_mode 'reflect', 'replicate', 'circular' or 'zeros', got 'mirror'",
    ):
        filter_image(torch.zeros(1, 5, 5), classic_kernel("identity"), padding_mode="mirror")


def test_translate():
    x = torch.arange(1.0, 10.0).view(3, 3)
    assert translate(x, 1, 0).tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert translate(x, -1, -1).tolist() == [[5.0, 6.0, 0.0], [8.0, 9.0, 0.0], [0.0, 0.0, 0.0]]
    assert torch.equal(translate(x, 0, 0), x)
    assert translate(x, 3, 0).abs().sum() == 0.0
    assert torch.equal(translate(translate(x, 1, 2), -1, -2)[:2, :1], x[:2, :1])
    with pytest.raises(ValueError, match=r"expected a tensor \(\.\.\., H, W\), got \(3,\)"):
        translate(torch.zeros(3), 1, 1)
    with pytest.raises(TypeError, match="expected integer shifts, got dy=0.5, dx=1"):
        translate(x, 0.5, 1)


def test_convolution_is_translation_equivariant_away_from_borders():
    g = torch.Generator().manual_seed(6)
    x, k = torch.rand(1, 1, 20, 20, generator=g), torch.randn(2, 1, 3, 3, generator=g)
    a = conv2d_im2col(translate(x, 2, -3), k, padding=1)
    b = translate(conv2d_im2col(x, k, padding=1), 2, -3)
    assert torch.allclose(a[..., 3:-4, 4:-4], b[..., 3:-4, 4:-4], atol=1e-6)
    assert not torch.allclose(a, b, atol=1e-6)  # but not at the borders


def test_zero_pad_errors():
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., H, W\), got \(3,\)"):
        zero_pad(torch.ones(3), 1)
    with pytest.raises(TypeError, match="expected x as a tensor"):
        zero_pad([[1.0]], 1)
    with pytest.raises(TypeError, match="expected a number for value, got 'a'"):
        zero_pad(torch.ones(2, 2), 1, value="a")
