"""Audio-visual fusion: one module per variant, all with the same call signature.

Every fusion projects the audio vector ``a`` (B, Ca) linearly to C channels, tiles it over the
visual grid as ``A'`` (B, C, H, W) and combines it with the visual map ``V`` (B, Cv, H, W):

- ``mul`` (EM) ``V * A'`` and ``add`` (EA) ``V + A'``, the element-wise baselines of AViS-Net's
  fusion ablation (C = Cv);
- ``concat`` (AFCV) ``ReLU(GN(Conv3x3([V ; A'])))``;
- ``logan`` (AViS-Net) ``Conv([V ; M * A'])`` with ``M`` pooled from the transformer's
  attention maps;
- ``tpavi`` (AVSBench's baseline) non-local attention between visual positions and the audio.

``forward(visual, audio, *, attention=None)`` returns ``(fused, extras)``: ``fused`` has Cv
channels, ``extras["audio"]`` is the projected audio vector (B, C) and LoGAN adds
``extras["map"]``, the map M the widgets show. Fusions that do not use attention maps accept
and ignore them, so a model can swap variants by name.

Example:
    >>> import torch
    >>> from avlab.heads import create_head
    >>> _ = torch.manual_seed(0)
    >>> visual, audio = torch.randn(2, 8, 5, 6), torch.randn(2, 4)
    >>> maps = torch.rand(2, 3, 5, 6)
    >>> for name in ("mul", "add", "concat", "logan", "tpavi"):
    ...     fusion = create_head(name, 8, 4, **({"num_groups": 4} if name == "concat" else {}))
    ...     fused, extras = fusion(visual, audio, attention=maps)
    ...     print(name, tuple(fused.shape), sorted(extras))
    mul (2, 8, 5, 6) ['audio']
    add (2, 8, 5, 6) ['audio']
    concat (2, 8, 5, 6) ['audio']
    logan (2, 8, 5, 6) ['audio', 'map']
    tpavi (2, 8, 5, 6) ['audio']
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avlab.heads._registry import register_head

__all__ = ["AddFusion", "ConcatFusion", "LoGANFusion", "MulFusion", "TPAVIFusion", "logan_map"]


def _check_inputs(
    visual: torch.Tensor, audio: torch.Tensor, visual_dim: int, audio_dim: int
) -> None:
    if visual.ndim != 4 or visual.shape[1] != visual_dim:
        raise ValueError(f"expected visual (B, {visual_dim}, H, W), got {tuple(visual.shape)}")
    if audio.ndim != 2 or audio.shape[0] != visual.shape[0] or audio.shape[1] != audio_dim:
        raise ValueError(
            f"expected audio ({visual.shape[0]}, {audio_dim}), got {tuple(audio.shape)}"
        )


def _tile(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # (B, C) -> (B, C, H, W) as a broadcast view: no copy until a conv reads it.
    return vector[:, :, None, None].expand(-1, -1, like.shape[-2], like.shape[-1])


class _TiledAudioFusion(nn.Module):
    """Shared parts: input checks and the linear projection of the audio vector."""

    def __init__(self, visual_dim: int, audio_dim: int, audio_proj_dim: int) -> None:
        super().__init__()
        self.visual_dim = visual_dim
        self.audio_dim = audio_dim
        self.audio_proj = nn.Linear(audio_dim, audio_proj_dim)

    def _project(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        _check_inputs(visual, audio, self.visual_dim, self.audio_dim)
        projected: torch.Tensor = self.audio_proj(audio)  # (B, C)
        return projected

    def extra_repr(self) -> str:
        return f"visual_dim={self.visual_dim}, audio_dim={self.audio_dim}"


@register_head("mul")
class MulFusion(_TiledAudioFusion):
    """Element-wise multiplication (EM): ``V * A'``, ``A'`` the audio projected to Cv, tiled.

    Args:
        visual_dim: Cv, channels of the visual map.
        audio_dim: Ca, size of the audio vector.

    Shape:
        visual: (B, Cv, H, W).
        audio: (B, Ca).
        attention: ignored (accepted for a common signature).
        output: fused (B, Cv, H, W); extras {"audio": (B, Cv)}.

    Example:
        >>> fused, extras = MulFusion(8, 4)(torch.ones(2, 8, 3, 3), torch.zeros(2, 4))
        >>> tuple(fused.shape), tuple(extras["audio"].shape)
        ((2, 8, 3, 3), (2, 8))
    """

    def __init__(self, visual_dim: int, audio_dim: int) -> None:
        super().__init__(visual_dim, audio_dim, visual_dim)

    def forward(
        self, visual: torch.Tensor, audio: torch.Tensor, *, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fuse; see the class docstring for shapes."""
        a = self._project(visual, audio)  # (B, Cv)
        return visual * _tile(a, visual), {"audio": a}


@register_head("add")
class AddFusion(_TiledAudioFusion):
    """Element-wise addition (EA): ``V + A'``, ``A'`` the audio projected to Cv, tiled.

    Args:
        visual_dim: Cv, channels of the visual map.
        audio_dim: Ca, size of the audio vector.

    Shape:
        visual: (B, Cv, H, W).
        audio: (B, Ca).
        attention: ignored (accepted for a common signature).
        output: fused (B, Cv, H, W); extras {"audio": (B, Cv)}.

    Example:
        >>> fused, _ = AddFusion(8, 4)(torch.zeros(2, 8, 3, 3), torch.zeros(2, 4))
        >>> tuple(fused.shape)
        (2, 8, 3, 3)
    """

    def __init__(self, visual_dim: int, audio_dim: int) -> None:
        super().__init__(visual_dim, audio_dim, visual_dim)

    def forward(
        self, visual: torch.Tensor, audio: torch.Tensor, *, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fuse; see the class docstring for shapes."""
        a = self._project(visual, audio)  # (B, Cv)
        return visual + _tile(a, visual), {"audio": a}


@register_head("concat")
class ConcatFusion(_TiledAudioFusion):
    """AFCV's fusion: ``ReLU(GN(Conv([V ; A'])))`` back to Cv channels.

    AFCV concatenates the audio and visual maps and fuses them with a convolution; the 3x3
    kernel, GroupNorm (CondInst's norm on its FPN heads) and ReLU are from the specification.
    The projection width of the audio (default Cv) is our choice.

    Args:
        visual_dim: Cv, channels of the visual map.
        audio_dim: Ca, size of the audio vector.
        audio_proj_dim: C, channels of ``A'``; None means Cv.
        num_groups: GroupNorm groups; must divide Cv.
        kernel_size: Odd size of the fusing convolution.

    Shape:
        visual: (B, Cv, H, W).
        audio: (B, Ca).
        attention: ignored (accepted for a common signature).
        output: fused (B, Cv, H, W); extras {"audio": (B, C)}.

    Example:
        >>> fusion = ConcatFusion(8, 4, num_groups=4)
        >>> fused, _ = fusion(torch.randn(2, 8, 3, 3), torch.randn(2, 4))
        >>> tuple(fused.shape), bool((fused >= 0).all())
        ((2, 8, 3, 3), True)
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        *,
        audio_proj_dim: int | None = None,
        num_groups: int = 32,
        kernel_size: int = 3,
    ) -> None:
        proj = visual_dim if audio_proj_dim is None else audio_proj_dim
        super().__init__(visual_dim, audio_dim, proj)
        if visual_dim % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide visual_dim={visual_dim}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        # No bias: GroupNorm's shift follows.
        self.conv = nn.Conv2d(
            visual_dim + proj, visual_dim, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.norm = nn.GroupNorm(num_groups, visual_dim)

    def forward(
        self, visual: torch.Tensor, audio: torch.Tensor, *, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fuse; see the class docstring for shapes."""
        a = self._project(visual, audio)  # (B, C)
        x = torch.cat([visual, _tile(a, visual)], dim=1)  # (B, Cv + C, H, W)
        return F.relu(self.norm(self.conv(x))), {"audio": a}


def logan_map(attention: torch.Tensor, *, power: float = 0.5, eps: float = 1e-12) -> torch.Tensor:
    """LoGAN's map: sum-pool the attention maps, power-normalise, L2-normalise over H*W.

    ``M = sum_Q S``; ``M = sign(M) |M|^p``; ``M = M / (||M||_2 + eps)`` with the norm over all
    H*W positions of each sample. With non-negative maps every value lies in [0, 1], as the
    paper says. ``|M|`` is clamped below at `eps` before the power so the gradient stays finite
    where M = 0 (the value there is still 0, by the sign); that clamp is ours.

    Args:
        attention: Attention maps S, e.g. sigmoids of the transformer's query-memory products.
        power: p of the power normalisation (our default 0.5: signed square root).
        eps: Added to the L2 norm, and the floor of ``|M|`` before the power.

    Shape:
        attention: (B, Q, H, W).
        output: (B, H, W).

    Example:
        >>> m = logan_map(torch.ones(2, 3, 4, 4))
        >>> tuple(m.shape), round(float(m[0].norm()), 4), round(float(m[0, 0, 0]), 4)
        ((2, 4, 4), 1.0, 0.25)
    """
    if attention.ndim != 4:
        raise ValueError(f"expected attention maps (B, Q, H, W), got {tuple(attention.shape)}")
    m = attention.sum(dim=1)  # (B, H, W)
    m = torch.sign(m) * torch.pow(m.abs().clamp_min(eps), power)
    norm = m.flatten(1).norm(dim=1)[:, None, None]  # (B, 1, 1)
    normalised: torch.Tensor = m / (norm + eps)
    return normalised


@register_head("logan")
class LoGANFusion(_TiledAudioFusion):
    """AViS-Net's LoGAN fusion: ``F = Conv([V ; M * A'])``, M from the attention maps.

    M is `logan_map` of the attention maps S (B, Q, H, W); ``M * A'`` keeps the audio where
    the sounding objects are. The paper says "a few convolutional layers"; ours default to one
    (`num_convs`, ReLU between layers), 3x3, projecting the audio to Cv channels. The power
    ``p = 0.5`` is our default too: no public code of AViS-Net exists.

    Args:
        visual_dim: Cv, channels of the visual map.
        audio_dim: Ca, size of the audio vector.
        audio_proj_dim: C, channels of ``A'``; None means Cv.
        power: p of the power normalisation of M.
        eps: Stabiliser of the L2 normalisation of M.
        num_convs: Convolutions after the concatenation, ReLU between them.
        kernel_size: Odd kernel size of those convolutions.

    Shape:
        visual: (B, Cv, H, W).
        audio: (B, Ca).
        attention: (B, Q, H, W), required.
        output: fused (B, Cv, H, W); extras {"audio": (B, C), "map": M (B, H, W)}.

    Example:
        >>> fusion = LoGANFusion(8, 4)
        >>> fused, extras = fusion(torch.randn(2, 8, 5, 6), torch.randn(2, 4), attention=torch.rand(2, 3, 5, 6))
        >>> tuple(fused.shape), tuple(extras["map"].shape)
        ((2, 8, 5, 6), (2, 5, 6))
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        *,
        audio_proj_dim: int | None = None,
        power: float = 0.5,
        eps: float = 1e-12,
        num_convs: int = 1,
        kernel_size: int = 3,
    ) -> None:
        proj = visual_dim if audio_proj_dim is None else audio_proj_dim
        super().__init__(visual_dim, audio_dim, proj)
        if num_convs < 1:
            raise ValueError(f"num_convs must be at least 1, got {num_convs}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        self.power = power
        self.eps = eps
        layers: list[nn.Module] = []
        for i in range(num_convs):
            if i:
                layers.append(nn.ReLU(inplace=True))
            in_dim = visual_dim + proj if i == 0 else visual_dim
            layers.append(nn.Conv2d(in_dim, visual_dim, kernel_size, padding=kernel_size // 2))
        self.fuse = nn.Sequential(*layers)

    def forward(
        self, visual: torch.Tensor, audio: torch.Tensor, *, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fuse; see the class docstring for shapes."""
        a = self._project(visual, audio)  # (B, C)
        if attention is None:
            raise ValueError("LoGAN fusion needs the attention maps: pass attention=(B, Q, H, W)")
        if (
            attention.ndim != 4
            or attention.shape[0] != visual.shape[0]
            or attention.shape[-2:] != visual.shape[-2:]
        ):
            raise ValueError(
                f"attention {tuple(attention.shape)} does not match visual {tuple(visual.shape)}: "
                "expected (B, Q, H, W) on the same grid"
            )
        m = logan_map(attention, power=self.power, eps=self.eps)  # (B, H, W)
        gated = m[:, None] * _tile(a, visual)  # (B, C, H, W)
        fused = self.fuse(torch.cat([visual, gated], dim=1))  # (B, Cv, H, W)
        return fused, {"audio": a, "map": m}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, power={self.power}"


@register_head("tpavi")
class TPAVIFusion(_TiledAudioFusion):
    """AVSBench's TPAVI for one frame: non-local attention from visual positions to the audio.

    As in AVSBench's ``TPAVIModule`` (dot-product mode, 2-D here): the audio is aligned to Cv
    by a linear layer and tiled; ``theta`` (on V), ``phi`` (on the tiled audio) and ``g`` (on V)
    are 1x1 convolutions to Ci channels; ``f = theta^T phi / N`` over the N = H*W positions, no
    softmax; ``y = f g``; ``z = W(y) + V`` with W a 1x1 convolution and a BatchNorm whose weight
    and bias start at zero (so ``z = V`` at initialisation); the output is LayerNorm(z) over
    channels. The tiled audio is the same at every position, so ``f g`` equals
    ``(theta_i . phi) * mean_j g_j``: computed that way, in O(N) instead of O(N^2) memory.

    Args:
        visual_dim: Cv, channels of the visual map.
        audio_dim: Ca, size of the audio vector.
        inter_dim: Ci; None means ``max(Cv // 2, 1)`` as in AVSBench.
        layer_norm_eps: Epsilon of the final LayerNorm.

    Shape:
        visual: (B, Cv, H, W).
        audio: (B, Ca).
        attention: ignored (accepted for a common signature).
        output: fused (B, Cv, H, W); extras {"audio": (B, Cv)}, the aligned audio.

    Example:
        >>> fusion = TPAVIFusion(8, 4)
        >>> x = torch.randn(2, 8, 3, 3)
        >>> fused, _ = fusion(x, torch.randn(2, 4))
        >>> expected = torch.nn.functional.layer_norm(x.movedim(1, -1), (8,)).movedim(-1, 1)
        >>> tuple(fused.shape), bool(torch.allclose(fused, expected, atol=1e-6))  # zero-init residual
        ((2, 8, 3, 3), True)
    """

    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        *,
        inter_dim: int | None = None,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__(visual_dim, audio_dim, visual_dim)
        inter = max(visual_dim // 2, 1) if inter_dim is None else inter_dim
        self.inter_dim = inter
        self.theta = nn.Conv2d(visual_dim, inter, 1)
        self.phi = nn.Conv2d(visual_dim, inter, 1)
        self.g = nn.Conv2d(visual_dim, inter, 1)
        residual_norm = nn.BatchNorm2d(visual_dim)
        nn.init.zeros_(residual_norm.weight)  # W(y) = 0 at first: the block starts as identity
        nn.init.zeros_(residual_norm.bias)
        self.W_z = nn.Sequential(nn.Conv2d(inter, visual_dim, 1), residual_norm)
        self.norm = nn.LayerNorm(visual_dim, eps=layer_norm_eps)

    def forward(
        self, visual: torch.Tensor, audio: torch.Tensor, *, attention: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fuse; see the class docstring for shapes."""
        a = self._project(visual, audio)  # (B, Cv)
        theta = self.theta(visual).flatten(2)  # (B, Ci, N)
        phi = self.phi(a[:, :, None, None]).flatten(1)  # (B, Ci): the same at every position
        g_mean = self.g(visual).flatten(2).mean(dim=2)  # (B, Ci)
        f = torch.einsum("bcn,bc->bn", theta, phi)  # (B, N): theta_i . phi_j for any j
        y = f[:, None, :] * g_mean[:, :, None]  # (B, Ci, N) = sum_j f_ij g_j / N
        y = y.view(visual.shape[0], self.inter_dim, *visual.shape[-2:])  # (B, Ci, H, W)
        z = self.W_z(y) + visual  # (B, Cv, H, W)
        return self.norm(z.movedim(1, -1)).movedim(-1, 1), {"audio": a}
