"""Spatial Attention Block, sine position encoding and the audio-conditioned transformer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avlab.heads import AudioConditionedTransformer, SpatialAttentionBlock, sine_position_encoding


def test_spatial_attention_is_sigmoid_conv_of_mean_and_max() -> None:
    torch.manual_seed(0)
    block = SpatialAttentionBlock()
    x = torch.randn(2, 8, 5, 6)
    out, s = block(x)
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], 1)
    expected = torch.sigmoid(F.conv2d(pooled, block.conv.weight, padding=3))
    assert block.conv.kernel_size == (7, 7) and block.conv.bias is None
    assert torch.allclose(s, expected, atol=1e-6)
    assert torch.allclose(out, x * expected, atol=1e-6)


def test_spatial_attention_needs_an_odd_kernel() -> None:
    with pytest.raises(ValueError, match="odd"):
        SpatialAttentionBlock(kernel_size=4)


def detr_sine(h: int, w: int, num_pos_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    # DETR's PositionEmbeddingSine(normalize=True) on an unpadded image, as in models/position_encoding.py.
    not_mask = torch.ones(1, h, w)
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)[0]


@pytest.mark.parametrize(("h", "w", "dim"), [(4, 5, 8), (7, 3, 32)])
def test_sine_position_encoding_matches_detr(h: int, w: int, dim: int) -> None:
    assert torch.allclose(sine_position_encoding(h, w, dim), detr_sine(h, w, dim // 2), atol=1e-5)


def test_sine_position_encoding_needs_a_multiple_of_four() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_position_encoding(2, 2, 6)


def small_transformer(**kwargs: object) -> AudioConditionedTransformer:
    torch.manual_seed(0)
    options = {"d_model": 16, "num_heads": 2, "dim_feedforward": 32, "num_queries": 3} | kwargs
    return AudioConditionedTransformer(8, 6, **options).eval()


def test_transformer_maps_are_sigmoid_of_scaled_query_memory_products() -> None:
    model = small_transformer()
    out = model(torch.randn(2, 8, 5, 6), torch.randn(2, 6))
    expected = torch.einsum("bqd,bdhw->bqhw", out.queries, out.memory) / math.sqrt(16)
    assert torch.allclose(out.logits, expected, atol=1e-5)
    assert torch.allclose(out.maps, torch.sigmoid(out.logits))
    assert ((out.maps > 0) & (out.maps < 1)).all()


def test_transformer_queries_depend_on_the_audio() -> None:
    model = small_transformer()
    x = torch.randn(2, 8, 5, 6)
    a, b = model(x, torch.randn(2, 6)), model(x, torch.randn(2, 6))
    assert torch.allclose(a.memory, b.memory)  # the encoder sees no audio
    assert not torch.allclose(a.maps, b.maps, atol=1e-4)


def test_transformer_layer_counts_and_defaults() -> None:
    model = AudioConditionedTransformer(8, 6)
    assert (model.d_model, model.num_queries, len(model.encoder), len(model.decoder)) == (
        256,
        8,
        1,
        1,
    )
    deeper = small_transformer(num_encoder_layers=2, num_decoder_layers=3, map_scale=1.0)
    assert (len(deeper.encoder), len(deeper.decoder), deeper.map_scale) == (2, 3, 1.0)
    out = deeper(torch.randn(1, 8, 3, 4), torch.randn(1, 6))
    assert out.maps.shape == (1, 3, 3, 4)


def test_transformer_rejects_bad_inputs() -> None:
    model = small_transformer()
    with pytest.raises(ValueError, match=r"expected x \(B, 8, H, W\)"):
        model(torch.randn(2, 4, 5, 6), torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"expected audio \(2, 6\)"):
        model(torch.randn(2, 8, 5, 6), torch.randn(1, 6))
    with pytest.raises(ValueError, match="must divide"):
        AudioConditionedTransformer(8, 6, d_model=10, num_heads=4)
