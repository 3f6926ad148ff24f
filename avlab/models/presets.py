"""Size presets of every system: "tiny" for tests and doctests, "cpu" for short CPU runs.

The systems' own defaults follow the papers (PixelPlayer's 7-level U-Net of width 64, a
256-wide transformer); a preset is a dict of keyword options that shrinks them. Presets name
no data-dependent sizes (channels, sources, categories): `avlab.train.fit` adds those.

Example:
    >>> from avlab.models import create_system, system_preset
    >>> model = create_system("avisnet", channels=(8, 16, 32), **system_preset("avisnet", "tiny"))
    >>> model.time_multiple
    8
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "system_preset"]

_TINY_AUDIO = {"audio_dim": 16, "audio_channels": (4, 8)}
_TINY_UNET = {"unet_downs": 3, "unet_base": 4}
_CPU_AUDIO = {"audio_dim": 32, "audio_channels": (8, 16, 32)}
_CPU_UNET = {"unet_downs": 4, "unet_base": 8}
# AFCV's sizes: towers and pyramid width, GroupNorm groups, mask branch, embedding; small
# frames put every SynthAV object on P3 unless the FCOS level ranges shrink with them.
_TINY_VIS = {"width": 8, "num_convs": 1, "num_groups": 4, "mask_branch_channels": 8, "embedding_dim": 8,
             "size_bounds": (16, 32), "sizes_of_interest": (16, 32, 64)}
_CPU_VIS = {"width": 64, "num_convs": 2, "num_groups": 16, "mask_branch_channels": 32, "embedding_dim": 64,
            "size_bounds": (32, 64), "sizes_of_interest": (32, 64, 128)}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "avisnet": {"d_model": 16, "num_heads": 2, "dim_feedforward": 32, "num_queries": 3, "fpn_width": 8,
                    "num_channels": 4, **_TINY_AUDIO, **_TINY_UNET},
        "pixelplayer": {"num_channels": 4, "energy_grid": (8, 4), **_TINY_UNET},
        "coseg": {**_TINY_UNET},
        "audio_only": {"hidden_dim": 16, "num_channels": 4, **_TINY_AUDIO, **_TINY_UNET},
        "visual_only": {"fpn_width": 8, "hidden_dim": 8},
        "afcv": {**_TINY_VIS, **_TINY_AUDIO},
        "crossvis": dict(_TINY_VIS),
        "condinst_vis": dict(_TINY_VIS),
    },
    "cpu": {
        "avisnet": {"d_model": 32, "num_heads": 4, "dim_feedforward": 64, "num_queries": 4, "fpn_width": 32,
                    "num_channels": 16, **_CPU_AUDIO, **_CPU_UNET},
        "pixelplayer": {"num_channels": 16, **_CPU_UNET},
        "coseg": {**_CPU_UNET},
        "audio_only": {"hidden_dim": 64, "num_channels": 16, **_CPU_AUDIO, **_CPU_UNET},
        "visual_only": {"fpn_width": 32, "hidden_dim": 64},
        "afcv": {**_CPU_VIS, **_CPU_AUDIO},
        "crossvis": dict(_CPU_VIS),
        "condinst_vis": dict(_CPU_VIS),
    },
}


def system_preset(system: str, preset: str) -> dict[str, Any]:
    """The keyword options of `preset` ("tiny" or "cpu") for `system` (a copy).

    Raises:
        ValueError: Unknown preset or system.

    Example:
        >>> system_preset("visual_only", "cpu")
        {'fpn_width': 32, 'hidden_dim': 64}
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
    if system not in PRESETS[preset]:
        raise ValueError(f"preset {preset!r} has no options for {system!r}; it has {sorted(PRESETS[preset])}")
    return dict(PRESETS[preset][system])
