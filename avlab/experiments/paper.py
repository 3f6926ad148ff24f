"""The seed papers' own figures, for the ablation tables to print beside ours as other data.

They were measured on other data (AViS-Net: the AVE dataset; AFCV: YouTube-VIS 2019 after COCO
pre-training) with full-size models, so they give the papers' orderings, not targets for
SynthAV's values. Units are the papers': SDR / SIR / SAR in dB, accuracy and AP in percent.
Keys are the ablation's row keys (`avlab.experiments.ablate.TABLES`).

Example:
    >>> PAPER["table1"]["avisnet"]["sdr"], PAPER_SOURCES["vis"].split(", Object")[0]
    (7.43, 'Zheng, Shen and Ren')
"""

from __future__ import annotations

__all__ = ["PAPER", "PAPER_SOURCES"]

PAPER: dict[str, dict[str, dict[str, float]]] = {
    # "Listen to the Pixels", Table 1: separation and segmentation accuracy at IoU 0.75 on AVE.
    "table1": {
        "audio_only": {"sdr": 5.28, "sir": 9.43, "acc_iou75": 59.68},
        "visual_only": {"sdr": 4.16, "sir": 6.88, "acc_iou75": 63.49},
        "coseg": {"sdr": 1.03, "sir": 6.37, "acc_iou75": 45.90},
        "pixelplayer": {"sdr": 4.96, "sir": 9.21, "acc_iou75": 64.42},
        "avisnet": {"sdr": 7.43, "sir": 13.16, "acc_iou75": 70.95},
    },
    # "Listen to the Pixels", Table 2: fusion strategies (TPAVI is not in the paper).
    "fusion": {
        "mul": {"sdr": 4.32, "sir": 7.29, "sar": 6.19, "acc_iou75": 56.38},
        "add": {"sdr": 5.11, "sir": 8.24, "sar": 7.22, "acc_iou75": 59.96},
        "concat": {"sdr": 5.99, "sir": 9.38, "sar": 9.03, "acc_iou75": 64.13},
        "logan": {"sdr": 7.43, "sir": 13.16, "sar": 12.84, "acc_iou75": 70.95},
    },
    # "Object Segmentation with Audio Context" (AFCV), Table 1: YouTube-VIS AP, ResNet-50.
    "vis": {
        "masktrack_rcnn": {"ap": 30.3},
        "condinst_vis": {"ap": 32.1},
        "crossvis": {"ap": 34.8},
        "afcv": {"ap": 34.9},
    },
}

PAPER_SOURCES: dict[str, str] = {
    "table1": "Listen to the Pixels, Table 1 (AVE dataset, accuracy at IoU 0.75)",
    "fusion": "Listen to the Pixels, Table 2 (AVE dataset; TPAVI not reported)",
    "vis": "Zheng, Shen and Ren, Object Segmentation with Audio Context, Table 1 (YouTube-VIS, ResNet-50)",
    "crossover": "AFCV paper, Figure 7: crossover gives limited improvement (no figures reported)",
    "hide_and_detect": "Listen to the Pixels: qualitative only (no figures reported)",
    "intensity": "Listen to the Pixels: qualitative only (no figures reported)",
}
