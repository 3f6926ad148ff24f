"""Scoring speed (issue 9, figure 6): separation scores against mir_eval, YouTube-VIS AP against plain pycocotools.

1. Separation: avlab's BSS Eval v3 (`avlab.eval.bss_eval`, `SeparationMeter`) against
   ``mir_eval.separation.bss_eval_sources`` on 6 s, 11025 Hz, 2-source mixtures, in
   mixtures/s, three workloads: ``protocol`` (one `SeparationMeter.update`: SDR/SIR/SAR of
   the estimates and the SDR of the mixture), ``bss_eval`` (no permutation search) and
   ``bss_eval with permutation search``. Each mixture is scored by both backends back to back,
   which one goes first alternating; the largest absolute difference of any figure (dB) is
   recorded. Target >= 5x at 1e-6 dB agreement (``details["agrees"]`` says whether it holds).
2. YouTube-VIS: `avlab.eval.ytvis_evaluate` against the YouTube-VIS API's path done plainly
   with pycocotools, on synthetic ground truth and results of 1,000 tracks (quick: 100), in
   tracks/s (ground-truth tracks scored per second). Both get the same parsed JSON (ground
   truth with uncompressed RLEs, results with compressed RLEs, as the dataset and the
   evaluation server have them) and must give the same 12 figures. Reported only (no target).

Example:
    >>> from avlab.bench.scoring import NOTES, ellipse_rle
    >>> "mir_eval" in NOTES
    True
    >>> ellipse_rle(4, 4, centre=(1.5, 1.5), radii=(1.0, 1.0))  # rows 1-2 of columns 1-2
    [5, 2, 2, 2, 5]
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from avlab.bench.harness import BenchContext, Figure, interleaved, median

__all__ = ["NOTES", "ellipse_rle", "plain_ytvis_evaluate", "run", "separation_sample", "synthetic_ytvis"]

NOTES = (
    "Separation: each 6 s, 11025 Hz mixture is the mean of two instrument-like sources (harmonic notes with "
    "vibrato, -40 dB noise floor); the estimates are what an ideal binary STFT mask recovers, so they carry a "
    "real separator's leakage and artifacts. Both sides are scored on each mixture back to back, which goes "
    "first alternating, BLAS on one thread for both (threadpoolctl: both factorise matrices of at most "
    "1024 x 1024, which OpenBLAS's threads slow down on a small shared machine). The baseline is "
    "`mir_eval.separation.bss_eval_sources` itself (avlab's `backend=\"mir_eval\"` path: mir_eval called "
    "directly, the mixture's SDR by a second call, as the Sound of Pixels code does). "
    "YouTube-VIS: synthetic videos of 360 x 640 frames with moving ellipse tracks of every area range "
    "(small, medium, large), appearing and leaving; results are jittered copies of most tracks (some with the "
    "wrong category) plus false positives, scores loosely following quality. avlab's `ytvis_evaluate` "
    "checks every entry, keeps per-frame RLEs and computes the track IoUs with one `mask.iou` call per "
    "frame (`avlab.eval.ytvis.track_iou`), then runs COCOeval with that IoU. The "
    "baseline is the YouTube-VIS API's algorithm written plainly on pycocotools: per-frame RLEs as given "
    "(frPyObjects for uncompressed counts), a track's area the mean of its non-empty frame areas, track IoU "
    "= sum over frames of intersections / sum of unions computed per video and category with one "
    "`pycocotools.mask.iou` call per frame on every present (result, ground truth) pair, then COCOeval's "
    "own evaluateImg / accumulate / summarize with the YouTube-VIS area ranges. A second baseline is the "
    "API's literal per-pair loop (`mask.merge` intersection and union per pair and frame). Both parse "
    "nothing: they get the same JSON content already loaded."
)

SAMPLE_RATE = 11025
SECONDS = 6.0
#: The agreement the separation target asks for, in dB.
AGREEMENT_DB = 1e-6


def run(context: BenchContext) -> list[Figure]:
    """The three separation figures and the two YouTube-VIS figures."""
    num_mixtures = 1 if context.quick else 4
    figures = separation(num_mixtures=num_mixtures, repeats=context.repeats)
    size = (100, 12) if context.quick else (1000, 20)  # (tracks, frames per video)
    figures += ytvis(num_tracks=size[0], num_frames=size[1], repeats=context.repeats)
    return figures


# Separation.

def instrument(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Legato pentatonic notes of a harmonic tone with vibrato, plus a -40 dB noise floor."""
    t = np.arange(num_samples) / SAMPLE_RATE
    root = rng.uniform(110.0, 440.0)
    signal = np.zeros(num_samples)
    bounds = np.linspace(0, num_samples, 13).astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        frequency = root * 2 ** (rng.choice([0, 2, 4, 7, 9, 12]) / 12)
        phase = 2 * np.pi * frequency * t[start:stop] + 0.3 * np.sin(2 * np.pi * 5.0 * t[start:stop])
        decay = np.exp(-3.0 * (t[start:stop] - t[start]))
        signal[start:stop] = decay * sum(np.sin(h * phase) / h**1.5 for h in range(1, 9))
    signal /= np.sqrt(np.mean(signal**2))
    return signal + 0.01 * rng.standard_normal(num_samples)


def separation_sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One mixture: references, ideal-binary-mask estimates and the mixture.

    Shape:
        references: (2, T), T = 6 s at 11025 Hz.
        estimates: (2, T).
        mixture: (T,).
    """
    import scipy.signal

    num_samples = int(SECONDS * SAMPLE_RATE)
    references = np.stack([instrument(rng, num_samples) for _ in range(2)]) * rng.uniform(0.5, 1.5, (2, 1))
    mixture = references.mean(axis=0)

    def stft(x: np.ndarray) -> np.ndarray:
        return scipy.signal.stft(x, nperseg=1022, noverlap=1022 - 256)[2]

    spectra, mixture_spectrum = stft(references / 2), stft(mixture)
    masks = np.abs(spectra) > 0.5 * np.abs(mixture_spectrum)
    estimates = scipy.signal.istft(masks * mixture_spectrum, nperseg=1022, noverlap=1022 - 256)[1][:, :num_samples]
    return references, estimates, mixture


def _protocol(backend: str, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    from avlab.eval import SeparationMeter

    meter = SeparationMeter(backend=backend)  # type: ignore[arg-type]
    meter.update(references, estimates, mixture)
    scores = meter.compute()
    return np.array([scores["sdr"], scores["sir"], scores["sar"], scores["sdr_mix"]])


def _plain(permute: bool) -> Callable[[str, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    def score(backend: str, references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> np.ndarray:
        from avlab.eval import bss_eval

        scores = bss_eval(references, estimates, compute_permutation=permute, backend=backend)  # type: ignore[arg-type]
        return np.concatenate([scores["sdr"], scores["sir"], scores["sar"]])

    return score


WORKLOADS = {
    "protocol (SeparationMeter.update)": _protocol,
    "bss_eval": _plain(False),
    "bss_eval with permutation search": _plain(True),
}


def separation(*, num_mixtures: int, repeats: int) -> list[Figure]:
    """Mixtures/s of avlab's BSS Eval against mir_eval's, per workload, with their largest difference."""
    from avlab.eval.separation import one_blas_thread

    rng = np.random.default_rng(0)
    mixtures = [separation_sample(rng) for _ in range(num_mixtures)]
    figures = []
    with one_blas_thread():
        for name, workload in WORKLOADS.items():
            for arrays in mixtures[:1]:  # warm both: imports, first-call allocations
                workload("fast", *arrays), workload("mir_eval", *arrays)
            times: dict[str, list[float]] = {"fast": [], "mir_eval": []}
            difference = 0.0
            for repetition in range(repeats):
                for index, arrays in enumerate(mixtures):
                    # Alternate which backend goes first, so neither always runs on a warm cache.
                    order = ("fast", "mir_eval") if (repetition + index) % 2 == 0 else ("mir_eval", "fast")
                    scores = {}
                    for backend in order:
                        started = time.perf_counter()
                        scores[backend] = workload(backend, *arrays)
                        times[backend].append(time.perf_counter() - started)
                    difference = max(difference, float(np.max(np.abs(scores["fast"] - scores["mir_eval"]))))
            figures.append(Figure(
                f"separation scoring, {name}: {SECONDS:g} s at {SAMPLE_RATE} Hz, 2 sources",
                unit="mixtures/s", baseline=f"mir_eval {version('mir_eval')} bss_eval_sources",
                baseline_rate=1 / median(times["mir_eval"]), rate=1 / median(times["fast"]), target=5.0,
                details={"max_abs_diff_db": difference, "agreement_db": AGREEMENT_DB,
                         "agrees": difference <= AGREEMENT_DB, "mixtures": num_mixtures, "repeats": repeats,
                         "blas_threads": _blas_threads(), "seconds": times}))
    return figures


def _blas_threads() -> int | str:
    """BLAS threads in effect now (threadpoolctl), or "unknown"."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else "unknown"


# YouTube-VIS.

def ellipse_rle(height: int, width: int, *, centre: tuple[float, float], radii: tuple[float, float]) -> list[int] | None:
    """COCO uncompressed RLE counts of a filled ellipse, built column by column (no dense mask).

    A pixel (y, x) is inside when ``((y - cy) / ry)^2 + ((x - cx) / rx)^2 <= 1``. An ellipse
    convex in every column covers one run of rows per column, so the column-major runs follow
    directly from the column spans.

    Args:
        height: Frame height.
        width: Frame width.
        centre: (cy, cx) in pixels.
        radii: (ry, rx) in pixels.

    Returns:
        Run lengths, background first; None when no pixel of the frame is inside.
    """
    (cy, cx), (ry, rx) = centre, radii
    columns = np.arange(max(0, int(np.ceil(cx - rx))), min(width, int(np.floor(cx + rx)) + 1))
    half = ry * np.sqrt(np.clip(1 - ((columns - cx) / rx) ** 2, 0, None))
    top = np.maximum(np.ceil(cy - half), 0).astype(np.int64)
    bottom = np.minimum(np.floor(cy + half), height - 1).astype(np.int64)
    keep = top <= bottom
    columns, top, bottom = columns[keep], top[keep], bottom[keep]
    if columns.size == 0:
        return None
    starts, ends = columns * height + top, columns * height + bottom + 1  # column-major positions
    # A run that ends at a column's last row and the next that starts at its first row are one run.
    joined = np.flatnonzero(starts[1:] == ends[:-1])
    starts, ends = np.delete(starts, joined + 1), np.delete(ends, joined)
    bounds = np.empty(2 * starts.size + 2, np.int64)
    bounds[0], bounds[1:-1:2], bounds[2:-1:2], bounds[-1] = 0, starts, ends, height * width
    return np.diff(bounds).tolist()


def synthetic_ytvis(num_tracks: int, *, num_frames: int, height: int = 360, width: int = 640, num_categories: int = 10,
                    seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A YouTube-VIS ground truth of `num_tracks` tracks and a results list for it.

    Videos hold 1 to 4 tracks; a track is an ellipse that drifts and changes size, present over
    a random span of frames (absent frames are null), its radii spread over YouTube-VIS's
    small, medium and large area ranges. Results: a jittered copy of about 85% of the tracks
    (shifted, rescaled, a tenth with another category), plus about one false positive in three
    videos; scores loosely follow how good the copy is. Ground truth has uncompressed RLEs (as
    the dataset's JSON), results compressed ones (as the evaluation server wants them).

    Returns:
        (ground-truth JSON content, results list).
    """
    from pycocotools import mask as coco_mask

    rng = np.random.default_rng(seed)
    videos: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def track(start: int, stop: int, centre: np.ndarray, velocity: np.ndarray, radii: np.ndarray,
              growth: float) -> list[list[int] | None]:
        frames: list[list[int] | None] = [None] * num_frames
        for t in range(start, stop):
            scale = growth ** (t - start)
            frames[t] = ellipse_rle(height, width, centre=tuple(centre + velocity * (t - start)),
                                    radii=tuple(np.maximum(radii * scale, 1.5)))
        return frames

    def compressed(counts: list[int] | None) -> dict[str, Any] | None:
        if counts is None:
            return None
        rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}

    def random_track() -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, float]:
        start = int(rng.integers(0, num_frames // 3))
        stop = int(rng.integers(max(start + 2, 2 * num_frames // 3), num_frames + 1))
        radius = float(np.exp(rng.uniform(np.log(8), np.log(170))))  # areas from ~200 to ~90,000 pixels
        radii = np.array([radius * rng.uniform(0.6, 1.0), radius * rng.uniform(0.8, 1.4)])
        centre = np.array([rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width])
        velocity = rng.normal(0, 4, 2)
        return start, stop, centre, velocity, radii, float(rng.uniform(0.98, 1.02))

    video_id = 0
    while len(annotations) < num_tracks:
        video_id += 1
        videos.append({"id": video_id, "height": height, "width": width, "length": num_frames,
                       "file_names": [f"v{video_id:04d}/{5 * t:05d}.jpg" for t in range(num_frames)]})
        for _ in range(min(int(rng.integers(1, 5)), num_tracks - len(annotations))):
            start, stop, centre, velocity, radii, growth = random_track()
            category = int(rng.integers(1, num_categories + 1))
            frames = track(start, stop, centre, velocity, radii, growth)
            annotations.append({
                "id": len(annotations) + 1, "video_id": video_id, "category_id": category, "iscrowd": 0,
                "height": height, "width": width, "length": 1,
                "segmentations": [None if c is None else {"size": [height, width], "counts": c} for c in frames],
                "areas": [None if c is None else int(sum(c[1::2])) for c in frames],
            })
            if rng.random() < 0.85:  # a detection of this track, more or less good
                error = rng.uniform(0, 0.5)
                shifted = centre + rng.normal(0, error * radii.mean(), 2)
                copy_start = min(stop - 1, start + int(rng.integers(0, 2)))
                copy = track(copy_start, stop, shifted, velocity + rng.normal(0, error, 2),
                             radii * rng.uniform(1 - error / 2, 1 + error / 2, 2), growth)
                results.append({"video_id": video_id,
                                "category_id": category if rng.random() < 0.9 else int(rng.integers(1, num_categories + 1)),
                                "score": float(np.clip(1 - error + rng.normal(0, 0.15), 0.01, 1.0)),
                                "segmentations": [compressed(c) for c in copy]})
        if rng.random() < 1 / 3:  # a false positive
            results.append({"video_id": video_id, "category_id": int(rng.integers(1, num_categories + 1)),
                            "score": float(rng.uniform(0.01, 0.6)),
                            "segmentations": [compressed(c) for c in track(*random_track())]})
    categories = [{"id": k, "name": f"category {k}", "supercategory": "object"} for k in range(1, num_categories + 1)]
    return {"videos": videos, "annotations": annotations, "categories": categories}, results


def plain_ytvis_evaluate(ground_truth: Mapping[str, Any], results: Sequence[Mapping[str, Any]], *,
                         pairwise: bool = False) -> dict[str, float]:
    """The YouTube-VIS API's AP/AR done plainly with pycocotools: per-frame RLEs, COCOeval accumulation.

    Args:
        ground_truth: YouTube-VIS JSON content with annotations (per frame an RLE or null).
        results: Per track ``video_id``, ``category_id``, ``score`` and per-frame RLEs or null.
        pairwise: Compute each (result, ground truth) IoU by its own loop over frames with
            ``mask.merge`` (the API's literal code path) instead of one ``mask.iou`` call per frame.

    Returns:
        The 12 figures of `avlab.eval.ytvis.YTVIS_STATS`.
    """
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from avlab.eval.ytvis import YTVIS_STATS

    class Videos(COCO):
        """COCO's index over videos, whose annotations hold a list of per-frame segmentations."""

        def __init__(self, videos: list[dict[str, Any]], annotations: list[dict[str, Any]],
                     categories: list[Any]) -> None:
            super().__init__()
            self.dataset = {"images": videos, "annotations": annotations, "categories": categories}
            with contextlib.redirect_stdout(io.StringIO()):
                self.createIndex()

        def annToRLE(self, ann: dict[str, Any]) -> list[Any]:  # noqa: N802 - COCO's method
            return ann["segmentation"]

    videos = [{"id": v["id"], "height": v["height"], "width": v["width"]} for v in ground_truth["videos"]]
    sizes = {v["id"]: (v["height"], v["width"]) for v in ground_truth["videos"]}

    def frames(segmentations: Sequence[Any], video_id: int) -> list[Any]:
        height, width = sizes[video_id]
        return [None if s is None else coco_mask.frPyObjects(s, height, width) if isinstance(s["counts"], list) else s
                for s in segmentations]

    def mean_area(rles: list[Any]) -> float:
        areas = [a for a in (coco_mask.area(r) for r in rles if r is not None) if a]
        return float(np.mean(areas)) if areas else 0.0

    gts = []
    for index, annotation in enumerate(ground_truth["annotations"]):
        rles = frames(annotation["segmentations"], annotation["video_id"])
        gts.append({"id": index + 1, "image_id": annotation["video_id"], "category_id": annotation["category_id"],
                    "iscrowd": int(annotation.get("iscrowd", 0)), "segmentation": rles, "area": mean_area(rles)})
    dts = []
    for index, result in enumerate(results):
        rles = frames(result["segmentations"], result["video_id"])
        dts.append({"id": index + 1, "image_id": result["video_id"], "category_id": result["category_id"],
                    "iscrowd": 0, "score": float(result["score"]), "segmentation": rles, "area": mean_area(rles)})

    class TrackEval(COCOeval):
        """COCOeval whose IoU is the YouTube-VIS track IoU over per-frame RLEs."""

        def computeIoU(self, video: int, category: int) -> Any:  # noqa: N802 - COCOeval's method
            gt, dt = self._gts[video, category], self._dts[video, category]
            if not gt or not dt:
                return []
            order = np.argsort([-d["score"] for d in dt], kind="mergesort")
            dt = [dt[i] for i in order[: self.params.maxDets[-1]]]
            d, g = [x["segmentation"] for x in dt], [x["segmentation"] for x in gt]
            return _pairwise_iou(d, g) if pairwise else _framewise_iou(d, g)

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools narrates every step
        evaluation = TrackEval(Videos(videos, gts, ground_truth["categories"]),
                               Videos(videos, dts, ground_truth["categories"]), iouType="segm")
        evaluation.params.areaRng = [[0, 1e5**2], [0, 128**2], [128**2, 256**2], [256**2, 1e5**2]]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: float(value) for name, value in zip(YTVIS_STATS, evaluation.stats, strict=True)}


def _framewise_iou(dt: list[list[Any]], gt: list[list[Any]]) -> np.ndarray:
    """(D, G) track IoUs from one ``mask.iou`` call per frame on the tracks present in it."""
    from pycocotools import mask as coco_mask

    intersections = np.zeros((len(dt), len(gt)))
    dt_area, gt_area = np.zeros(len(dt)), np.zeros(len(gt))
    for t in range(len(gt[0])):
        d = [i for i, track in enumerate(dt) if track[t] is not None]
        g = [j for j, track in enumerate(gt) if track[t] is not None]
        d_area = coco_mask.area([dt[i][t] for i in d]).astype(np.float64) if d else np.zeros(0)
        g_area = coco_mask.area([gt[j][t] for j in g]).astype(np.float64) if g else np.zeros(0)
        dt_area[d] += d_area
        gt_area[g] += g_area
        if d and g:
            iou = coco_mask.iou([dt[i][t] for i in d], [gt[j][t] for j in g], [0] * len(g))  # (|d|, |g|)
            # iou = I / (a + b - I), so I = iou (a + b) / (1 + iou): an integer, recovered exactly.
            intersections[np.ix_(d, g)] += np.rint(iou * (d_area[:, None] + g_area[None, :]) / (1 + iou))
    unions = dt_area[:, None] + gt_area[None, :] - intersections
    return np.divide(intersections, unions, out=np.zeros_like(unions), where=unions > 0)


def _pairwise_iou(dt: list[list[Any]], gt: list[list[Any]]) -> np.ndarray:
    """(D, G) track IoUs, each pair by its own loop over frames (merge for intersection and union)."""
    from pycocotools import mask as coco_mask

    def track_iou(d_frames: list[Any], g_frames: list[Any]) -> float:
        intersection = union = 0.0
        for d, g in zip(d_frames, g_frames, strict=True):
            if d is not None and g is not None:
                intersection += coco_mask.area(coco_mask.merge([d, g], intersect=True))
                union += coco_mask.area(coco_mask.merge([d, g], intersect=False))
            elif d is not None or g is not None:
                union += coco_mask.area(d if d is not None else g)
        return intersection / union if union > 0 else 0.0

    ious = np.zeros((len(dt), len(gt)))
    for i, j in itertools.product(range(len(dt)), range(len(gt))):
        ious[i, j] = track_iou(dt[i], gt[j])
    return ious


def ytvis(*, num_tracks: int, num_frames: int, repeats: int) -> list[Figure]:
    """Ground-truth tracks scored per second by avlab and by the two plain pycocotools paths."""
    from avlab.eval import ytvis_evaluate

    generated = time.perf_counter()
    ground_truth, results = synthetic_ytvis(num_tracks, num_frames=num_frames)
    generated = time.perf_counter() - generated
    cases = {
        "pycocotools, mask.iou per frame": lambda: plain_ytvis_evaluate(ground_truth, results),
        "pycocotools, per-pair merge loop": lambda: plain_ytvis_evaluate(ground_truth, results, pairwise=True),
        "avlab": lambda: ytvis_evaluate(ground_truth, results),
    }
    stats = {name: case() for name, case in cases.items()}  # warm, and the figures to compare
    times = interleaved({name: _discard(case) for name, case in cases.items()}, repeats)
    rates = {name: num_tracks / median(t) for name, t in times.items()}
    sizes = {"videos": len(ground_truth["videos"]), "ground_truth_tracks": num_tracks, "result_tracks": len(results),
             "frames_per_video": num_frames, "frame_size": [ground_truth["videos"][0]["height"],
                                                            ground_truth["videos"][0]["width"]],
             "seconds_to_generate": generated}
    figures = []
    for baseline in ("pycocotools, mask.iou per frame", "pycocotools, per-pair merge loop"):
        difference = max(abs(stats["avlab"][k] - stats[baseline][k]) for k in stats["avlab"])
        figures.append(Figure(
            f"YouTube-VIS AP/AR, {num_tracks} tracks x {num_frames} frames: avlab ytvis_evaluate",
            unit="tracks/s", baseline=f"YouTube-VIS API path on pycocotools {version('pycocotools')}, {baseline.split(', ')[1]}",
            baseline_rate=rates[baseline], rate=rates["avlab"], target=None,
            details={**sizes, "max_abs_diff_stats": difference, "avlab_stats": stats["avlab"],
                     "baseline_stats": stats[baseline], "repeats": repeats,
                     "seconds": {"avlab": times["avlab"], "baseline": times[baseline]},
                     "median_seconds": {name: median(t) for name, t in times.items()}}))
    return figures


def _discard(case: Callable[[], Any]) -> Callable[[], None]:
    def timed() -> None:
        case()

    return timed
