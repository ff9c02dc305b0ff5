"""Attention pieces against PyTorch's own (SDPA, nn.MultiheadAttention, conv) and on hand-computed
cases."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from visionbook import attention
from visionbook.attention import (
    EncoderBlock,
    MultiHeadSelfAttention,
    PatchEmbedding,
    SpatialAttention,
    ViT,
    attention_cnn,
    attention_rollout,
    patchify,
    scaled_dot_product_attention,
    sinusoidal_positions,
)
from visionbook.blocks import SqueezeExcite
from visionbook.models import small_cnn


def test_spatial_attention_by_hand_and_errors():
    torch.manual_seed(0)
    gate, x = SpatialAttention(3), torch.randn(2, 5, 6, 6)
    pooled = torch.stack([x.mean(1), x.amax(1)], 1)
    expected = x * torch.sigmoid(F.conv2d(pooled, gate.conv.weight, gate.conv.bias, padding=1))
    torch.testing.assert_close(gate(x), expected)
    assert gate.map.shape == (2, 1, 6, 6) and 0 < gate.map.min() and gate.map.max() < 1
    with pytest.raises(ValueError, match="odd positive kernel"):
        SpatialAttention(4)


def test_attention_cnn_without_gates_is_small_cnn_and_gates_are_inserted():
    torch.manual_seed(0)
    plain = attention_cnn(5, 3, (8, 16))
    torch.manual_seed(0)
    reference = small_cnn(5, 3, (8, 16))
    x = torch.rand(2, 3, 16, 16)
    plain.eval(), reference.eval()
    torch.testing.assert_close(plain(x), reference(x))
    gated = attention_cnn(5, 3, (8, 16, 32), se=True, spatial=True)
    assert sum(isinstance(m, SqueezeExcite) for m in gated) == 2  # every block but the first
    assert sum(isinstance(m, SpatialAttention) for m in gated) == 2
    with pytest.raises(TypeError, match="non-empty sequence"):
        attention_cnn(5, channels=16)
    with pytest.raises(ValueError, match="expected a positive integer "):
        attention_cnn(0)


def test_scaled_dot_product_attention_matches_pytorch_with_and_without_masks():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 4)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    mask = torch.rand(5, 6) > 0.5
    mask[:, 0] = True
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, mask)[0],
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        atol=1e-6,
        rtol=0,
    )
    additive = torch.randn(5, 6)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, additive)[0],
        F.scaled_dot_product_attention(q, k, v, attn_mask=additive),
        atol=1e-6,
        rtol=0,
    )
    with pytest.raises(ValueError, match=r"expected q \(\.\.\., Lq, d\)"):
        scaled_dot_product_attention(q, k[..., :4], v)


def test_attention_by_hand_on_two_tokens():
    # identical keys: uniform weights, output = mean of the values
    q, k, v = (
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[1.0, 1.0], [1.0, 1.0]]),
        torch.tensor([[2.0], [4.0]]),
    )
    out, w = scaled_dot_product_attention(q, k, v)
    assert w.tolist() == [[0.5, 0.5]] and out.item() == 3.0
    # scores 0 and 2/sqrt(2): weights softmax([0, sqrt(2)])
    out, w = scaled_dot_product_attention(
        torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0]]), v
    )
    e = math.exp(math.sqrt(2))
    assert w[0].tolist() == pytest.approx([1 / (1 + e), e / (1 + e)])


def test_multi_head_self_attention_matches_nn_multiheadattention():
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, batch_first=True)
    ours = MultiHeadSelfAttention(16, 4).copy_from(reference)
    x = torch.randn(3, 7, 16)
    expected, expected_w = reference(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(ours(x), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.weights, expected_w, atol=1e-6, rtol=0)
    keep = torch.rand(7, 7) > 0.4
    keep.fill_diagonal_(True)
    torch.testing.assert_close(
        ours(x, keep), reference(x, x, x, attn_mask=~keep)[0], atol=1e-6, rtol=0
    )


def test_multi_head_errors():
    with pytest.raises(ValueError, match="divisible by heads"):
        MultiHeadSelfAttention(10, 4)
    with pytest.raises(ValueError, match="expected a positive integer "):
        MultiHeadSelfAttention(0, 1)
    with pytest.raises(ValueError, match=r"nn.MultiheadAttention\(16, 4\)"):
        MultiHeadSelfAttention(16, 4).copy_from(nn.MultiheadAttention(16, 2))


def test_sinusoidal_positions_by_hand_and_errors():
    p = sinusoidal_positions(5, 4)
    assert p.shape == (5, 4)
    assert p[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert p[2].tolist() == pytest.approx(
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)], abs=1e-6
    )
    with pytest.raises(ValueError, match="even dimension"):
        sinusoidal_positions(5, 3)
    with pytest.raises(ValueError, match="expected a positive integer "):
        sinusoidal_positions(0, 4)


def test_patchify_order_and_patch_embedding_equals_linear_map():
    image = torch.arange(2 * 4 * 4.0).reshape(1, 2, 4, 4)
    patches = patchify(image, 2)
    assert patches.shape == (1, 4, 8)
    # bottom right, both channels
    assert patches[0, 3].tolist() == [10.0, 11.0, 14.0, 15.0, 26.0, 27.0, 30.0, 31.0]
    torch.manual_seed(0)
    embed, x = PatchEmbedding(3, 8, 4), torch.randn(2, 3, 12, 12)
    linear = patchify(x, 4) @ embed.proj.weight.flatten(1).T + embed.proj.bias
    torch.testing.assert_close(embed(x), linear, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        patchify(torch.zeros(1, 1, 5, 4), 2)


def test_encoder_block_is_permutation_equivariant():
    torch.manual_seed(0)
    block, x, perm = EncoderBlock(16, 4).eval(), torch.randn(2, 6, 16), torch.randperm(6)
    torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm], atol=1e-6, rtol=0)


def test_vit_shapes_positions_and_attention_maps():
    torch.manual_seed(0)
    model = ViT(28, 7, dim=32, depth=3, heads=4)
    with pytest.raises(RuntimeError, match="forward pass"):
        model.attention_maps()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    maps = model.attention_maps()
    assert len(maps) == 3 and maps[0].shape == (2, 4, 17, 17)
    fixed = ViT(32, 8, in_channels=3, num_classes=5, dim=16, positions="sinusoidal")
    assert "pos" not in dict(fixed.named_parameters()) and torch.equal(
        fixed.pos[0], sinusoidal_positions(17, 16)
    )
    with pytest.raises(ValueError, match="divides the image size"):
        ViT(28, 5)
    with pytest.raises(ValueError, match="'learned', 'sinusoidal' or 'none'"):
        ViT(28, 7, positions="rotary")


def test_vit_without_positions_ignores_patch_order():
    torch.manual_seed(0)
    model = ViT(8, 4, dim=16, positions="none").eval()
    x = torch.randn(1, 1, 8, 8)
    swapped = x.clone()
    # exchange two patches
    swapped[..., :4, :4], swapped[..., 4:, 4:] = x[..., 4:, 4:], x[..., :4, :4]
    torch.testing.assert_close(model(swapped), model(x), atol=1e-6, rtol=0)


def test_attention_rollout_by_hand_and_errors():
    a = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    assert attention_rollout([a, a]).tolist() == [[[0.25, 0.75], [0.0, 1.0]]]
    assert attention_rollout([a, a], residual=False).tolist() == [[[0.0, 1.0], [0.0, 1.0]]]
    b = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    # later layer on the left
    torch.testing.assert_close(attention_rollout([a, b], residual=False), b @ a)
    heads = torch.stack([a[0], b[0]])[None]  # (1, 2 heads, 2, 2): averaged first
    torch.testing.assert_close(attention_rollout([heads], residual=False), (a + b) / 2)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"\(B, heads, L, L\) or \(B, L, L\)"):
        attention_rollout([torch.zeros(2, 3)])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: attention.SpatialAttention()(torch.ones(4, 8, 8)),
            ValueError,
            r"expected images of shape \(B, C, H, W\), got \(4, 8, 8\)",
        ),
        (lambda: attention.SpatialAttention()([[1.0]]), TypeError, "expected images as a tensor"),
        (
            lambda: attention.MultiHeadSelfAttention(8, 2)(torch.ones(3, 5, 6)),
            ValueError,
            r"expected tokens of shape \(B, L, 8\), got \(3, 5, 6\)",
        ),
        (
            lambda: attention.EncoderBlock(8, 2)(torch.ones(5, 8)),
            ValueError,
            r"expected tokens of shape \(B, L, 8\), got \(5, 8\)",
        ),
        (
            lambda: attention.EncoderBlock("8", 2),
            ValueError,
            "expected a positive integer dim, got '8'",
        ),
        (
            lambda: attention.PatchEmbedding(1, 8, 7)(torch.ones(2, 3, 28, 28)),
            ValueError,
            r"expected images of shape \(B, 1, H, W\)",
        ),
        (
            lambda: attention.ViT(28, 7)(torch.ones(2, 1, 32, 32)),
            ValueError,
            r"expected images of shape \(B, 1, 28, 28\), got \(2, 1, 32, 32\)",
        ),
        (
            lambda: attention.scaled_dot_product_attention(
                torch.ones(4), torch.ones(2, 4), torch.ones(2, 4)
            ),
            ValueError,
            r"expected q \(..., Lq, d\), k \(..., Lk, d\) and v \(..., Lk, dv\), got \(4,\), "
            r"\(2, 4\), \(2, 4\)",
        ),
        (
            lambda: attention.scaled_dot_product_attention(
                [[1.0]], torch.ones(1, 1), torch.ones(1, 1)
            ),
            TypeError,
            "expected q as a tensor",
        ),
        (
            lambda: attention.scaled_dot_product_attention(
                torch.ones(3, 4), torch.ones(5, 4), torch.ones(5, 2), torch.ones(3, 4) > 0
            ),
            ValueError,
            r"expected a mask broadcastable to the scores' shape \(3, 5\), got \(3, 4\)",
        ),
        (
            lambda: attention.attention_rollout(torch.ones(1, 2, 3, 3)),
            TypeError,
            "expected a list of attention weights, one tensor per layer, got Tensor",
        ),
        (
            lambda: attention.attention_rollout([[[1.0]]]),
            TypeError,
            "expected attention weights as a tensor",
        ),
        (
            lambda: attention.attention_rollout([torch.ones(1, 3, 3), torch.ones(1, 4, 4)]),
            ValueError,
            r"expected every layer's weights of one shape \(1, 3, 3\), got \(1, 4, 4\)",
        ),
    ],
)
def test_new_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()
