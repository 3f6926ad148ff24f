"""AViS-Net's visual attention: the Spatial Attention Block and the audio-conditioned transformer.

No public code of AViS-Net exists; the paper names the parts ("a Spatial Attention Block to
enable a Transformer network based encoder-decoder to obtain an attention map of the
sound-producing object(s)"). What is here is ours, from the specification:

- `SpatialAttentionBlock`: CBAM's spatial attention, ``s = sigmoid(Conv7x7([mean_c X ; max_c X]))``.
- `AudioConditionedTransformer`: a DETR encoder-decoder over the flattened map with sine
  position encodings; the decoder's queries are learned embeddings plus the projected audio
  vector; the attention maps are ``sigmoid(q . memory / sqrt(d))`` for each decoded query q.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x, audio = torch.randn(2, 16, 4, 5), torch.randn(2, 6)
    >>> x, s = SpatialAttentionBlock()(x)
    >>> out = AudioConditionedTransformer(16, 6, d_model=32, num_heads=4, dim_feedforward=64)(x, audio)
    >>> tuple(s.shape), tuple(out.maps.shape), tuple(out.queries.shape)
    ((2, 1, 4, 5), (2, 8, 4, 5), (2, 8, 32))
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads._registry import register_head

__all__ = [
    "AudioConditionedTransformer",
    "SpatialAttentionBlock",
    "TransformerOutput",
    "sine_position_encoding",
]


@register_head("spatial_attention")
class SpatialAttentionBlock(nn.Module):
    """AViS-Net's Spatial Attention Block (ours: CBAM's spatial attention).

    ``s = sigmoid(Conv([mean over channels of X ; max over channels of X]))`` and
    ``X' = X * s``: one weight per position, shared by all channels. Works for any channel
    count, so it takes no input size.

    Args:
        kernel_size: Odd size of the convolution (CBAM's 7).

    Shape:
        x: (B, C, H, W).
        output: X' (B, C, H, W) and s (B, 1, H, W) in (0, 1).

    Example:
        >>> block = SpatialAttentionBlock()
        >>> x_att, s = block(torch.randn(2, 8, 5, 6))
        >>> tuple(x_att.shape), tuple(s.shape), bool(((s > 0) & (s < 1)).all())
        ((2, 8, 5, 6), (2, 1, 5, 6), True)
    """

    def __init__(self, *, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        # No bias, as in CBAM: the sigmoid's offset is learned through the weights alone.
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend; see the class docstring for shapes."""
        if x.ndim != 4:
            raise ValueError(f"expected x (B, C, H, W), got {tuple(x.shape)}")
        pooled = torch.cat(
            [x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1
        )  # (B, 2, H, W)
        s = torch.sigmoid(self.conv(pooled))  # (B, 1, H, W)
        return x * s, s


def sine_position_encoding(
    height: int,
    width: int,
    dim: int,
    *,
    temperature: float = 10000.0,
    normalize: bool = True,
    scale: float = 2 * math.pi,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """DETR's 2-D sine position encoding: dim/2 channels for y, then dim/2 for x.

    Each coordinate (1-based, normalised to (0, `scale`] when `normalize`) is divided by
    ``temperature^(2 floor(i/2) / (dim/2))`` and alternately passed through sin and cos.

    Args:
        height: H of the grid.
        width: W of the grid.
        dim: Channels; a multiple of 4.
        temperature: Base of the wavelengths.
        normalize: Scale coordinates to (0, `scale`] so the encoding ignores the grid size.
        scale: Range of the normalised coordinates.
        device: Device of the result.
        dtype: Floating dtype of the result (default: torch's default).

    Shape:
        output: (dim, height, width).

    Example:
        >>> pos = sine_position_encoding(4, 5, 8)
        >>> tuple(pos.shape), bool(pos.abs().max() <= 1)
        ((8, 4, 5), True)
    """
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    half = dim // 2
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32)  # (H,)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32)  # (W,)
    if normalize:
        y = y / (height + 1e-6) * scale
        x = x / (width + 1e-6) * scale
    i = torch.arange(half, device=device, dtype=torch.float32)
    wavelengths = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / half)  # (dim/2,)

    def encode(coords: torch.Tensor) -> torch.Tensor:
        angles = coords[:, None] / wavelengths  # (L, dim/2)
        pairs = torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=2)  # (L, dim/4, 2)
        return pairs.flatten(1)  # (L, dim/2): sin, cos interleaved

    pos_y = encode(y).T[:, :, None].expand(half, height, width)  # (dim/2, H, W)
    pos_x = encode(x).T[:, None, :].expand(half, height, width)  # (dim/2, H, W)
    return torch.cat([pos_y, pos_x], dim=0).to(dtype or torch.get_default_dtype())  # (dim, H, W)


class _EncoderLayer(nn.Module):
    """DETR's post-norm encoder layer: positions added to queries and keys, not values."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = k = src + pos  # (B, N, d)
        src = self.norm1(src + self.dropout(self.self_attn(q, k, src, need_weights=False)[0]))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(src))))
        out: torch.Tensor = self.norm2(src + self.dropout(ffn))  # (B, N, d)
        return out


class _DecoderLayer(nn.Module):
    """DETR's post-norm decoder layer: self-attention, cross-attention to memory, FFN."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.cross_attn = nn.MultiheadAttention(
            d_model, num_heads, dropout=dropout, batch_first=True
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        q = k = tgt + query_pos  # (B, Q, d)
        tgt = self.norm1(tgt + self.dropout(self.self_attn(q, k, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        out: torch.Tensor = self.norm3(tgt + self.dropout(ffn))  # (B, Q, d)
        return out


class TransformerOutput(NamedTuple):
    """What `AudioConditionedTransformer` returns.

    Attributes:
        maps: Attention maps S, sigmoid of `logits`, (B, Q, H, W): what LoGAN pools.
        logits: ``q . memory / sqrt(d)`` before the sigmoid, (B, Q, H, W), for a loss.
        queries: Decoded queries, (B, Q, d).
        memory: Encoder output on the grid, (B, d, H, W).

    Example:
        >>> TransformerOutput._fields
        ('maps', 'logits', 'queries', 'memory')
    """

    maps: torch.Tensor
    logits: torch.Tensor
    queries: torch.Tensor
    memory: torch.Tensor


@register_head("av_transformer")
class AudioConditionedTransformer(nn.Module):
    """AViS-Net's transformer encoder-decoder (ours, DETR-like), conditioned on the audio.

    A 1x1 convolution projects the visual map to d channels; the encoder runs over the H*W
    positions with sine position encodings added to queries and keys (DETR). The decoder's
    ``num_queries`` inputs are learned query embeddings plus the audio vector projected to d
    (the same for every query); the embeddings are also re-added to the queries of every
    attention, as DETR does with its query positions. The attention map of query q is
    ``sigmoid(q . memory_ij * scale)``; `map_scale` (default ``1/sqrt(d)``, ours, so that maps
    do not start saturated) scales the product.

    Args:
        visual_dim: Cv, channels of the visual map (the Spatial Attention Block's output).
        audio_dim: Ca, size of the audio vector.
        d_model: Transformer width d.
        num_heads: Attention heads; must divide d.
        num_encoder_layers: Encoder layers.
        num_decoder_layers: Decoder layers.
        dim_feedforward: Hidden width of the feed-forward blocks (DETR's 2048).
        dropout: Dropout in attention and feed-forward blocks (DETR's 0.1).
        num_queries: Q, decoder queries = attention maps.
        map_scale: Factor on the query-memory products; None means ``1 / sqrt(d)``.

    Shape:
        x: (B, Cv, H, W).
        audio: (B, Ca).
        output: `TransformerOutput` with maps and logits (B, Q, H, W), queries (B, Q, d),
            memory (B, d, H, W).

    Example:
        >>> model = AudioConditionedTransformer(8, 4, d_model=16, num_heads=2, dim_feedforward=32, num_queries=3)
        >>> out = model(torch.randn(2, 8, 5, 6), torch.randn(2, 4))
        >>> tuple(out.maps.shape), tuple(out.queries.shape), tuple(out.memory.shape)
        ((2, 3, 5, 6), (2, 3, 16), (2, 16, 5, 6))
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        *,
        d_model: int = 256,
        num_heads: int = 8,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        num_queries: int = 8,
        map_scale: float | None = None,
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        if num_decoder_layers < 1:
            raise ValueError(f"need at least one decoder layer, got {num_decoder_layers}")
        self.visual_dim = visual_dim
        self.audio_dim = audio_dim
        self.d_model = d_model
        self.num_queries = num_queries
        self.map_scale = 1 / math.sqrt(d_model) if map_scale is None else map_scale
        self.input_proj = nn.Conv2d(visual_dim, d_model, 1)
        self.audio_proj = nn.Linear(audio_dim, d_model)
        self.query_embed = nn.Embedding(num_queries, d_model)
        self.encoder = nn.ModuleList(
            _EncoderLayer(d_model, num_heads, dim_feedforward, dropout)
            for _ in range(num_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            _DecoderLayer(d_model, num_heads, dim_feedforward, dropout)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)  # DETR normalises the decoder's output

    def forward(self, x: torch.Tensor, audio: torch.Tensor) -> TransformerOutput:
        """Encode, decode the audio-conditioned queries, and map them; shapes in the class docstring."""
        if x.ndim != 4 or x.shape[1] != self.visual_dim:
            raise ValueError(f"expected x (B, {self.visual_dim}, H, W), got {tuple(x.shape)}")
        if audio.shape != (x.shape[0], self.audio_dim):
            raise ValueError(
                f"expected audio ({x.shape[0]}, {self.audio_dim}), got {tuple(audio.shape)}"
            )
        b, _, h, w = x.shape
        src = self.input_proj(x).flatten(2).transpose(1, 2)  # (B, N, d)
        pos = sine_position_encoding(h, w, self.d_model, device=x.device, dtype=src.dtype)
        pos = pos.flatten(1).T.unsqueeze(0)  # (1, N, d)
        memory = src
        for layer in self.encoder:
            memory = layer(memory, pos)  # (B, N, d)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(b, -1, -1)  # (B, Q, d)
        tgt = query_pos + self.audio_proj(audio).unsqueeze(1)  # (B, Q, d)
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos, query_pos)
        queries = self.decoder_norm(tgt)  # (B, Q, d)
        logits = torch.einsum("bqd,bnd->bqn", queries, memory) * self.map_scale  # (B, Q, N)
        logits = logits.view(b, self.num_queries, h, w)  # (B, Q, H, W)
        memory_map = memory.transpose(1, 2).reshape(b, self.d_model, h, w)  # (B, d, H, W)
        return TransformerOutput(torch.sigmoid(logits), logits, queries, memory_map)

    def extra_repr(self) -> str:
        return (
            f"visual_dim={self.visual_dim}, audio_dim={self.audio_dim}, d_model={self.d_model}, "
            f"num_queries={self.num_queries}"
        )
