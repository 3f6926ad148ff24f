"""Systems: plain ``nn.Module``s assembled from `avlab.heads`, registered by name.

``create_system(name, channels=bundle_channels, **options)`` builds one ("avisnet",
"pixelplayer", "coseg", "audio_only", "visual_only"); each records its constructor arguments
so checkpoints rebuild it (`load_system`). Defaults follow the papers; `system_preset(name,
"tiny" | "cpu")` gives smaller sizes for tests and CPU runs. Systems compute no loss: the training task
(`avlab.train`) does. AViS-Net and the co-segmentation baseline have no public code: they are
built from ../shared/SPEC.md and the papers, and their docstrings say which choices are ours.

The frame-level batch contract
------------------------------

Every system's ``forward(batch, *, output_size=None, epoch=0, step=None)`` takes a dict of
tensors describing B frames (`avlab.train` builds it from a feature store; a notebook can build
it by hand). A system reads the keys it needs and ignores the rest.

Inputs of the batch's frame::

    visual_c3, visual_c4, visual_c5   (B, C_l, h_l, w_l) float   backbone levels of the frame
    logmel                            (B, 64, 96) float           log-mel patch heard with the
                                                                  frame (a mixture's, in mixtures)

Separation inputs (a batch "separates" when it has mixture_mag and source_region)::

    mixture_mag          (B, 512, T) float       |X|, the mixture's STFT magnitude over a window
                                                 of T frames (T a multiple of the system's
                                                 ``time_multiple``; zero padding after the audio)
    source_region        (B, N, H, W) float      where source n is on the frame that shows it, in
                                                 [0, 1]; all zeros: unknown (pooled everywhere)
    source_visual_{lvl}  (B, N, C_l, h_l, w_l)   the frame showing source n, when sources come
                                                 from different clips (mix-and-separate); absent:
                                                 every source is on the batch's frame (a natural
                                                 mixture: regions from source_instance ->
                                                 instance masks)

Targets and bookkeeping (read by the training task, never by systems)::

    mask              (B, H, W) uint8        sounding-object mask: 1 in, 0 out, 255 unannotated
    annotated         (B,) bool              frames with a ground-truth mask
    silent_shown      (B,) bool              frames showing an object silent on them
    source_mag        (B, N, 512, T) float   |S_n|; mixture = sum of sources
    source_valid      (B, N) bool            real sources (False: padding up to N)
    mixture_stft      (B, 512, T) complex64  the mixture, for phase at reconstruction
    source_stft       (B, N, 512, T) complex64
    stft_length       (B,) int64             STFT frames of the window that hold audio
    source_category   (B, N) int64           category of each source, -1 unknown

End-to-end batches carry ``image`` (B, 3, Hi, Wi) and ``source_image`` (B, N, 3, Hi, Wi),
floats in [0, 1], instead of the visual levels; the training task's backbone turns them into
``visual_*`` / ``source_visual_*`` before the system runs.

Outputs (a dict)::

    mask_logits        (B, H, W)            sounding-object logits at `output_size` (default:
                                            the batch's mask size)
    separation_logits  (B, N, 256, T)       mask logits on the warped spectrogram, when the
                                            system separates and the batch has a mixture
    attention          (B, Q, h5, w5)       AViS-Net's transformer attention maps S
    logan_map          (B, h5, w5)          AViS-Net's LoGAN map M of the maps it fused

plus system-specific extras (AViS-Net "hide_mask", "intensity_weights"; PixelPlayer
"pixel_energy"; CoSeg "category_logits" (B, N, K), "audio_category_logits" (B, K)). Systems
say ``separates`` (bool), ``time_multiple`` (T must be a multiple of it) and, for the
audio-only baseline, ``permutation_invariant``. `separate_waveforms` turns separation logits
into waveforms (unwarp, threshold 0.5, mixture phase, inverse STFT).

Example:
    >>> import torch
    >>> from avlab.models import create_system
    >>> model = create_system("visual_only", channels=(8, 16, 32), fpn_width=8, hidden_dim=8)
    >>> batch = {"visual_c3": torch.randn(2, 8, 4, 4), "visual_c4": torch.randn(2, 16, 2, 2),
    ...          "visual_c5": torch.randn(2, 32, 1, 1), "mask": torch.zeros(2, 32, 32, dtype=torch.uint8)}
    >>> tuple(model(batch)["mask_logits"].shape)
    (2, 32, 32)
"""

from __future__ import annotations

from avlab.models._registry import (
    create_system,
    list_systems,
    register_system,
    system_class,
    system_config,
    system_task,
)
from avlab.models.afcv import AFCV, CondInstVIS, CrossVIS
from avlab.models.avisnet import AViSNet
from avlab.models.baselines import AudioOnly, VisualOnly
from avlab.models.checkpoint import load_system, save_system, system_state_dict
from avlab.models.inference import separate_waveforms, spectrogram_masks, waveforms
from avlab.models.masktrack import (
    MaskTrackRCNN,
    TrackHead,
    VideoTracker,
    boxes_from_masks,
    evaluate_masktrack,
    load_masktrack,
    predict_ytvis,
    save_masktrack,
    track_video,
)
from avlab.models.pixelplayer import CoSeg, PixelPlayer
from avlab.models.presets import PRESETS, system_preset
from avlab.models.tracker import Track, Tracker

__all__ = [
    # registry
    "create_system",
    "list_systems",
    "register_system",
    "system_class",
    "system_config",
    "system_task",
    "PRESETS",
    "system_preset",
    # systems
    "AFCV",
    "AViSNet",
    "AudioOnly",
    "CoSeg",
    "CondInstVIS",
    "CrossVIS",
    "PixelPlayer",
    "VisualOnly",
    # checkpoints
    "load_system",
    "save_system",
    "system_state_dict",
    # inference
    "separate_waveforms",
    "spectrogram_masks",
    "waveforms",
    # tracking
    "Track",
    "Tracker",
    # MaskTrack R-CNN baseline (not a registered system: it reads images, not the batch contract)
    "MaskTrackRCNN",
    "TrackHead",
    "VideoTracker",
    "boxes_from_masks",
    "evaluate_masktrack",
    "load_masktrack",
    "predict_ytvis",
    "save_masktrack",
    "track_video",
]
