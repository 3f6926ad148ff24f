"""`avlab.evaluate` against a tiny SynthAV store: perfect, empty and mixture predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import avlab
from avlab.backbones import SeparationSTFT
from avlab.errors import AvlabError
from avlab.testing import tiny_store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return tiny_store(tmp_path_factory.mktemp("evaluate"), num_videos=3)


def true_masks(store, video: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    count = int(store.num_frames[video])
    return (store["mask"][video, 0, :count].values == 1).astype(np.uint8)


def test_perfect_masks_score_one_and_empty_masks_score_what_the_protocol_says(store) -> None:  # type: ignore[no-untyped-def]
    perfect = {str(v): true_masks(store, k) for k, v in enumerate(store.video.values)}
    scores = avlab.evaluate(perfect, store)
    assert list(scores.video.values) == list(store.video.values)
    assert np.allclose(scores.miou.values, 1.0) and np.allclose(scores.accuracy.values, 1.0)
    assert scores.attrs["summary"]["miou"] == pytest.approx(1.0, abs=1e-6)
    empty = {v: np.zeros_like(m) for v, m in perfect.items()}
    scored = avlab.evaluate(empty, store)
    for k, video in enumerate(scored.video.values):
        truth = perfect[str(video)]
        # Frames with a sounding object score 0; silent frames score 1 (all pixels correctly empty).
        expected = np.mean([0.0 if frame.any() else 1.0 for frame in truth])
        assert scored.miou.values[k] == pytest.approx(expected, abs=1e-6)


def test_a_model_is_called_once_per_video_with_its_frames(store) -> None:  # type: ignore[no-untyped-def]
    seen = []

    def model(item):  # type: ignore[no-untyped-def]
        seen.append(item["video"])
        return np.where(item["mask"].numpy() == 1, 5.0, -5.0)  # logits

    scores = avlab.evaluate(model, store)
    assert sorted(seen) == [0, 1, 2] and np.allclose(scores.miou.values, 1.0)


def test_missing_or_misshapen_predictions_are_named(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AvlabError, match="no prediction for video 'train_0000'"):
        avlab.evaluate({}, store)
    bad = {str(v): np.zeros((4, 3, 3)) for v in store.video.values}
    with pytest.raises(AvlabError, match="has shape"):
        avlab.evaluate(bad, store)


def test_separation_of_the_true_sources_and_of_the_mixture(store) -> None:  # type: ignore[no-untyped-def]
    stft = SeparationSTFT()
    rng = np.random.default_rng(0)
    good, mixture_only = {}, {}
    for k, video in enumerate(store.video.values):
        count = int(store.num_sources[k])
        spectra = store.source_stft[k, :count].values
        valid = ~np.isnan(store.stft[k].values.real).all(axis=1)
        length = (int(valid.sum()) - 1) * stft.hop_length
        sources = stft.inverse(spectra[:, valid].transpose(0, 2, 1), length)
        mixture = stft.inverse(store.stft[k].values[valid].T, length)
        good[str(video)] = sources + 0.001 * rng.standard_normal(sources.shape)
        mixture_only[str(video)] = np.repeat(mixture[None], count, axis=0)
    scores = avlab.evaluate(good, store, task="separation")
    assert (scores.sdr.values > 20).all() and scores.attrs["summary"]["num_samples"] == 3
    baseline = avlab.evaluate(mixture_only, store, task="separation")
    several = baseline.num_sources.values > 1
    assert several.any()
    # The mixture as the estimate: SDR equals the mixture's SDR, NSDR 0. With one source the
    # mixture is the source itself: both SDRs are infinite and NSDR is undefined, or, where the
    # projection leaves rounding error (BLAS threading varies), both are huge and NSDR is 0.
    np.testing.assert_allclose(baseline.nsdr.values[several], 0.0, atol=1e-6)
    single = baseline.nsdr.values[~several]
    assert (np.isnan(single) | (np.abs(single) < 1e-6)).all()
    assert (baseline.sdr.values[~several] > 100).all()


def test_a_store_without_the_ground_truth_says_so(tmp_path: Path) -> None:
    ds = tiny_store(tmp_path, num_videos=1, audio=())
    with pytest.raises(AvlabError, match="no stft, source_stft"):
        avlab.evaluate({}, ds, task="separation")
