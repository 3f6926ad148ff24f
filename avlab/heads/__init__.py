"""Heads: the trainable parts that sit on cached or live backbone features.

Plain ``nn.Module``s with explicit constructor arguments (input sizes first, then keyword-only
options), registered by name and family so configs and tests can build them by name; pure
torch functions for targets, weights, the frequency warp, the intensity cue and the losses the
training tasks call. This package imports only torch (and torchvision.ops for the detection losses and NMS).

Families: "fusion" (mul, add, concat, logan, tpavi), "attention" (spatial_attention,
av_transformer), "mask" (fpn_mask), "audio" (logmel_cnn), "separation" (audio_unet,
synthesizer, pixel_sound), "curriculum" (hide_and_detect), "tracking" (instance_embedding,
identity_classifier), "pyramid" (fpn), "detection" (fcos), "condinst" (condinst_mask_branch,
condinst_dynamic_mask).

AViS-Net's new parts (LoGAN, the Spatial Attention Block, the audio-conditioned transformer,
hide-and-detect, the intensity cue) have no public code: they are built from the
specification, and each docstring says which choices are ours.

Example:
    >>> import avlab.heads as heads
    >>> heads.list_heads("separation")
    ['audio_unet', 'pixel_sound', 'synthesizer']
"""

from __future__ import annotations

from avlab.heads._registry import create_head, head_family, list_heads, register_head
from avlab.heads.attention import (
    AudioConditionedTransformer,
    SpatialAttentionBlock,
    TransformerOutput,
    sine_position_encoding,
)
from avlab.heads.audio import LogMelEncoder
from avlab.heads.condinst import (
    CrossoverFrame,
    DynamicMaskHead,
    MaskBranch,
    aligned_bilinear,
    crossover_loss,
    dice_loss,
    dynamic_parameter_count,
    mask_losses,
    relative_coordinates,
    sample_masks,
    sample_positives,
    split_dynamic_parameters,
)
from avlab.heads.curriculum import HideAndDetect
from avlab.heads.embedding import (
    IdentityClassifier,
    InstanceEmbeddingHead,
    identity_loss,
    identity_scale,
)
from avlab.heads.fcos import (
    Detections,
    FCOSHead,
    FCOSOutput,
    FCOSTargets,
    centerness_targets,
    fcos_decode,
    fcos_locations,
    fcos_losses,
    fcos_targets,
    flatten_per_location,
    gather_locations,
)
from avlab.heads.fusion import (
    AddFusion,
    ConcatFusion,
    LoGANFusion,
    MulFusion,
    TPAVIFusion,
    logan_map,
)
from avlab.heads.intensity import (
    assign_by_intensity,
    even_frame_slices,
    intensity,
    intensity_weights,
    scale_attention,
)
from avlab.heads.losses import weighted_bce
from avlab.heads.mask import FPNMaskHead
from avlab.heads.pyramid import FeaturePyramid
from avlab.heads.separation import (
    AudioUNet,
    PixelSound,
    Synthesizer,
    separation_targets,
    separation_weights,
    unwarp_frequency,
    warp_frequency,
)

__all__ = [
    # registry
    "create_head",
    "head_family",
    "list_heads",
    "register_head",
    # fusion
    "AddFusion",
    "ConcatFusion",
    "LoGANFusion",
    "MulFusion",
    "TPAVIFusion",
    "logan_map",
    # attention
    "AudioConditionedTransformer",
    "SpatialAttentionBlock",
    "TransformerOutput",
    "sine_position_encoding",
    # mask
    "FPNMaskHead",
    # pyramid
    "FeaturePyramid",
    # audio
    "LogMelEncoder",
    # separation
    "AudioUNet",
    "PixelSound",
    "Synthesizer",
    "separation_targets",
    "separation_weights",
    "unwarp_frequency",
    "warp_frequency",
    # losses
    "weighted_bce",
    # curriculum
    "HideAndDetect",
    # intensity cue
    "assign_by_intensity",
    "even_frame_slices",
    "intensity",
    "intensity_weights",
    "scale_attention",
    # detection (FCOS, AFCV)
    "Detections",
    "FCOSHead",
    "FCOSOutput",
    "FCOSTargets",
    "centerness_targets",
    "fcos_decode",
    "fcos_locations",
    "fcos_losses",
    "fcos_targets",
    "flatten_per_location",
    "gather_locations",
    # condinst (dynamic masks, crossover)
    "CrossoverFrame",
    "DynamicMaskHead",
    "MaskBranch",
    "aligned_bilinear",
    "crossover_loss",
    "dice_loss",
    "dynamic_parameter_count",
    "mask_losses",
    "relative_coordinates",
    "sample_masks",
    "sample_positives",
    "split_dynamic_parameters",
    # embedding (AFCV tracking)
    "IdentityClassifier",
    "InstanceEmbeddingHead",
    "identity_loss",
    "identity_scale",
]
