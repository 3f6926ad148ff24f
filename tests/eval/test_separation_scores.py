"""BSS Eval v3, SI-SDR and the Sound of Pixels protocol against mir_eval, torchmetrics and hand values."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avlab.eval import SeparationMeter, bss_eval, si_sdr
from avlab.eval._bss_v3 import ReferenceSpace

# mir_eval's own separation test data (MIT licence, LICENSE.txt and provenance in the folder),
# kept with the tests so they never depend on anything outside the checkout.
TESTDATA = Path(__file__).resolve().parent / "data" / "mir_eval_separation"
CASES = ("01", "02", "03", "05", "06", "07", "08", "09")
NAMES = {"sdr": "Source to Distortion", "sir": "Source to Interference", "sar": "Source to Artifact"}


def load_case(case: str) -> tuple[np.ndarray, np.ndarray, dict]:
    def sources(kind: str) -> np.ndarray:
        files = sorted((TESTDATA / f"{kind}{case}").glob("*.wav"), key=lambda p: int(p.stem))
        signals = [soundfile.read(f)[0] for f in files]
        return np.stack([s.mean(axis=1) if s.ndim == 2 else s for s in signals])  # case 06 is stereo

    expected = json.loads((TESTDATA / f"output{case}.json").read_text())["Sources"]
    return sources("ref"), sources("est"), expected


def harmonic(rng: np.random.Generator, num_samples: int, sample_rate: int = 8000) -> np.ndarray:
    """A tone with five harmonics, vibrato and a -40 dB noise floor (a musical source)."""
    t = np.arange(num_samples) / sample_rate
    phase = 2 * np.pi * rng.uniform(100, 500) * t + 0.2 * np.sin(2 * np.pi * 4 * t)
    tone = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    return tone / np.std(tone) + 0.01 * rng.standard_normal(num_samples)


def generated(seed: int, kind: str, num_sources: int, num_samples: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        references = rng.standard_normal((num_sources, num_samples))
    else:
        references = np.stack([harmonic(rng, num_samples) for _ in range(num_sources)])
    # Estimates: filtered target, leakage of the others, and independent noise.
    filtered = np.stack([np.convolve(r, rng.standard_normal(8) * 0.2 + [1, 0, 0, 0, 0, 0, 0, 0], "same") for r in references])
    leakage = 0.2 * np.roll(references, 1, axis=0) + 0.1 * np.roll(references, 2, axis=0)
    return references, filtered + leakage + 0.05 * rng.standard_normal(references.shape)


def impulses() -> tuple[np.ndarray, np.ndarray]:
    """Impulse references: their delayed copies are orthonormal, so every figure is by hand."""
    references = np.zeros((2, 3000))
    references[0, 0] = references[1, 1000] = 1.0
    estimate = references[0] + 0.5 * references[1]
    estimate[2000] = 0.1  # outside both references' spans (delays 0..511): an artifact
    return references, np.stack([estimate, references[1] + 0.2 * references[0]])


# -- the mir_eval regression vectors ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["fast", pytest.param("mir_eval", marks=pytest.mark.slow)])
@pytest.mark.parametrize("case", CASES)
def test_mir_eval_testdata_is_reproduced_with_permutation(case, backend):
    references, estimates, expected = load_case(case)
    scores = bss_eval(references, estimates, compute_permutation=True, backend=backend)
    for key, name in NAMES.items():
        np.testing.assert_allclose(scores[key], expected[name], rtol=0, atol=1e-3)  # inf == inf passes
    assert scores["perm"].tolist() == expected["Source permutation"]


# -- agreement with mir_eval on generated signals ---------------------------------------------------


@pytest.mark.parametrize("permute", [False, True])
@pytest.mark.parametrize(("seed", "kind", "num_sources"), [(0, "noise", 2), (1, "harmonic", 2), (2, "harmonic", 3)])
def test_fast_backend_agrees_with_mir_eval_to_a_microdecibel(seed, kind, num_sources, permute):
    references, estimates = generated(seed, kind, num_sources)
    fast = bss_eval(references, estimates, compute_permutation=permute)
    reference = bss_eval(references, estimates, compute_permutation=permute, backend="mir_eval")
    assert fast.keys() == reference.keys()
    for key in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(fast[key], reference[key], rtol=0, atol=1e-6)
    if permute:
        np.testing.assert_array_equal(fast["perm"], reference["perm"])


@pytest.mark.parametrize("backend", ["fast", "mir_eval"])
def test_impulse_references_give_the_hand_computed_figures(backend):
    # Estimate 0 = r0 + 0.5 r1 + 0.1 artifact: target energy 1, interference 0.25, artifact 0.01.
    # Estimate 1 = r1 + 0.2 r0: target 1, interference 0.04, no artifact (SAR = +inf in theory).
    references, estimates = impulses()
    scores = bss_eval(references, estimates, backend=backend)
    assert scores["sdr"][0] == pytest.approx(10 * math.log10(1 / 0.26), abs=1e-9)
    assert scores["sir"][0] == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-9)
    assert scores["sar"][0] == pytest.approx(10 * math.log10(1.25 / 0.01), abs=1e-9)
    assert scores["sdr"][1] == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-9)
    assert scores["sir"][1] == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-9)
    assert scores["sar"][1] > 100  # round-off only: mir_eval and the fast path both report a huge ratio
    assert "perm" not in scores


@pytest.mark.parametrize("backend", ["fast", "mir_eval"])
def test_a_single_source_has_infinite_sir(backend):
    references, estimates = generated(3, "noise", 1)
    scores = bss_eval(references[0], estimates[0], compute_permutation=True, backend=backend)
    assert scores["sir"].tolist() == [math.inf]
    assert scores["sdr"] == pytest.approx(scores["sar"], abs=1e-9)
    assert scores["perm"].tolist() == [0]


def test_a_nearly_singular_gram_matrix_falls_back_to_lu_and_agrees_with_mir_eval():
    # Two tones of the same pitch: their delayed copies span almost the same few dimensions, so
    # round-off makes the Gram matrix indefinite and Cholesky fails.
    t = np.arange(2000) / 8000
    references = np.stack([sum(np.sin(2 * np.pi * 220 * h * t + h) / h for h in range(1, n + 1)) for n in (5, 2)])
    estimates = references[::-1] + 0.3 * references + 0.05 * np.random.default_rng(0).standard_normal(references.shape)
    space = ReferenceSpace(references)
    assert space._all._cholesky is None and space._all._lu is not None
    for permute in (False, True):
        fast = bss_eval(references, estimates, compute_permutation=permute)
        reference = bss_eval(references, estimates, compute_permutation=permute, backend="mir_eval")
        for key in ("sdr", "sir", "sar"):
            np.testing.assert_allclose(fast[key], reference[key], rtol=0, atol=1e-6)


def test_identical_references_are_solved_by_least_squares_as_mir_eval_does():
    rng = np.random.default_rng(1)
    references = np.stack([rng.standard_normal(2000)] * 2)
    estimates = references + 0.1 * rng.standard_normal((2, 2000))
    assert ReferenceSpace(references)._all._gram is not None  # exactly singular: no factorisation
    fast = bss_eval(references, estimates)
    reference = bss_eval(references, estimates, backend="mir_eval")
    for key in ("sdr", "sar"):
        np.testing.assert_allclose(fast[key], reference[key], rtol=0, atol=1e-6)
    assert np.all(fast["sir"] > 100) and np.all(reference["sir"] > 100)  # no interference: round-off only


def test_permutation_search_finds_swapped_estimates():
    references, estimates = generated(4, "harmonic", 3)
    straight = bss_eval(references, estimates, compute_permutation=True)
    swapped = bss_eval(references, estimates[[2, 0, 1]], compute_permutation=True)
    assert straight["perm"].tolist() == [0, 1, 2]
    assert swapped["perm"].tolist() == [1, 2, 0]
    for key in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(swapped[key], straight[key], rtol=0, atol=1e-9)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), order=st.permutations(range(3)))
def test_bss_eval_with_permutation_is_invariant_to_the_order_of_sources(seed, order):
    references, estimates = generated(seed, "noise", 3, num_samples=1600)
    base = bss_eval(references, estimates, compute_permutation=True)
    order = list(order)
    # Reordering the estimates changes only which estimate is matched to each reference.
    shuffled = bss_eval(references, estimates[order], compute_permutation=True)
    for key in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(shuffled[key], base[key], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(order)[shuffled["perm"]], base["perm"])
    # Reordering both reorders the figures.
    both = bss_eval(references[order], estimates[order], compute_permutation=True)
    for key in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(both[key], base[key][order], rtol=0, atol=1e-9)


def test_torch_and_float32_inputs_are_scored_in_float64():
    references, estimates = generated(5, "noise", 2)
    expected = bss_eval(references, estimates)
    scores = bss_eval(torch.from_numpy(references), torch.from_numpy(estimates))
    np.testing.assert_array_equal(scores["sdr"], expected["sdr"])
    assert scores["sdr"].dtype == np.float64


def test_mir_eval_backend_raises_no_deprecation_warning():
    references, estimates = generated(6, "noise", 2, num_samples=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bss_eval(references, estimates, backend="mir_eval")


@pytest.mark.parametrize("backend", ["fast", "mir_eval"])
def test_silent_sources_and_bad_shapes_are_rejected(backend):
    references, estimates = generated(7, "noise", 2, num_samples=1000)
    silent = estimates.copy()
    silent[1] = 0
    with pytest.raises(ValueError, match=r"estimate source\(s\) \[1\] are all zeros"):
        bss_eval(references, silent, backend=backend)
    with pytest.raises(ValueError, match=r"reference source\(s\) \[1\] are all zeros"):
        bss_eval(silent, references, backend=backend)
    with pytest.raises(ValueError, match="same non-empty"):
        bss_eval(references, estimates[:, :-1], backend=backend)
    with pytest.raises(ValueError, match="same non-empty"):
        bss_eval(np.zeros((2, 0)), np.zeros((2, 0)), backend=backend)


def test_unknown_backend_is_rejected():
    references, estimates = generated(8, "noise", 2, num_samples=1000)
    with pytest.raises(ValueError, match="backend"):
        bss_eval(references, estimates, backend="museval")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        SeparationMeter(backend="museval")  # type: ignore[arg-type]


# -- SI-SDR -----------------------------------------------------------------------------------------


def test_si_sdr_hand_values():
    # alpha = 1, target [1, 0], noise [0, -0.5]: 10 log10(1 / 0.25).
    assert si_sdr([1.0, 0.0], [1.0, 0.5]) == pytest.approx(10 * math.log10(4), abs=1e-12)
    # A rescaled reference is perfect; an orthogonal estimate has no target component.
    assert si_sdr([1.0, 2.0], [-3.0, -6.0]) == math.inf
    assert si_sdr([1.0, 0.0], [0.0, 1.0]) == -math.inf
    assert si_sdr([1.0, 0.0], [0.0, 0.0]) == -math.inf


def test_si_sdr_zero_mean_removes_offsets():
    reference = np.array([1.0, -1.0, 2.0, 0.0])
    estimate = reference + 5.0  # a DC offset only
    assert si_sdr(reference, estimate, zero_mean=True) == math.inf
    assert si_sdr(reference, estimate) < 0


@pytest.mark.parametrize("zero_mean", [False, True])
def test_si_sdr_agrees_with_torchmetrics(zero_mean):
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    rng = np.random.default_rng(9)
    reference = rng.standard_normal((3, 2, 500))
    estimate = reference + 0.3 * rng.standard_normal((3, 2, 500)) + 0.2
    expected = scale_invariant_signal_distortion_ratio(
        torch.from_numpy(estimate), torch.from_numpy(reference), zero_mean=zero_mean
    ).numpy()
    got = si_sdr(reference, estimate, zero_mean=zero_mean)
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_si_sdr_rejects_silent_references_and_mismatched_shapes():
    with pytest.raises(ValueError, match="all zeros"):
        si_sdr([0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="all zeros"):
        si_sdr([1.0, 1.0], [1.0, 0.0], zero_mean=True)
    with pytest.raises(ValueError, match="same non-empty"):
        si_sdr([1.0, 0.0], [1.0, 0.0, 0.0])


# -- the Sound of Pixels protocol -------------------------------------------------------------------


def test_meter_hand_values_on_impulses():
    references, estimates = impulses()
    meter = SeparationMeter()
    meter.update(references, estimates, references.sum(axis=0))
    scores = meter.compute()
    sdr = [10 * math.log10(1 / 0.26), 10 * math.log10(1 / 0.04)]
    assert scores["sdr"] == pytest.approx(np.mean(sdr), abs=1e-9)
    assert scores["sir"] == pytest.approx(np.mean([10 * math.log10(4), 10 * math.log10(25)]), abs=1e-9)
    # The mixture r0 + r1 as the estimate of either source: target 1, interference 1.
    assert scores["sdr_mix"] == pytest.approx(0.0, abs=1e-9)
    assert scores["nsdr"] == pytest.approx(scores["sdr"], abs=1e-9)
    assert (scores["num_samples"], scores["num_skipped"]) == (1, 0)


@pytest.mark.parametrize("backend", ["fast", "mir_eval"])
def test_meter_follows_the_protocol_sample_by_sample(backend):
    samples = [generated(10 + i, "harmonic", 2, num_samples=1500) for i in range(2)]
    meter = SeparationMeter(backend=backend)
    expected = {"sdr": [], "sir": [], "sar": [], "sdr_mix": []}
    for references, estimates in samples:
        mixture = references.sum(axis=0) / 2
        meter.update(references, estimates, mixture)
        # Sound of Pixels: no permutation; the mixture stands in for every estimate.
        scores = bss_eval(references, estimates, backend=backend)
        for key in ("sdr", "sir", "sar"):
            expected[key].append(np.mean(scores[key]))
        expected["sdr_mix"].append(np.mean(bss_eval(references, np.stack([mixture, mixture]), backend=backend)["sdr"]))
    scores = meter.compute()
    for key, values in expected.items():
        assert scores[key] == pytest.approx(np.mean(values), abs=1e-9)
    assert scores["nsdr"] == pytest.approx(np.mean(expected["sdr"]) - np.mean(expected["sdr_mix"]), abs=1e-9)
    assert scores["num_samples"] == 2


def test_meter_skips_samples_with_a_silent_reference_or_estimate():
    references, estimates = generated(13, "noise", 2, num_samples=2000)
    mixture = references.sum(axis=0)
    meter = SeparationMeter()
    meter.update(references, estimates, mixture)
    quiet = estimates.copy()
    quiet[0] = 1e-9  # sum |x| = 2e-6 <= 1e-5: silent by the protocol, though not all zeros
    meter.update(references, quiet, mixture)
    silent = references.copy()
    silent[1] = 0
    meter.update(silent, estimates, mixture)
    alone = SeparationMeter()
    alone.update(references, estimates, mixture)
    scores = meter.compute()
    assert (scores["num_samples"], scores["num_skipped"]) == (1, 2)
    assert {k: v for k, v in scores.items() if k != "num_skipped"} == {
        k: v for k, v in alone.compute().items() if k != "num_skipped"
    }


def test_meter_batches_equal_single_samples():
    samples = [generated(20 + i, "noise", 2, num_samples=1500) for i in range(3)]
    references = np.stack([r for r, _ in samples])
    estimates = np.stack([e for _, e in samples])
    mixtures = references.mean(axis=1)
    batched, single = SeparationMeter(), SeparationMeter()
    batched.update(torch.from_numpy(references), torch.from_numpy(estimates), torch.from_numpy(mixtures))
    for r, e, m in zip(references, estimates, mixtures, strict=True):
        single.update(r, e, m)
    assert batched.compute() == pytest.approx(single.compute(), abs=1e-12)


def test_meter_before_any_sample_and_after_reset():
    meter = SeparationMeter()
    scores = meter.compute()
    assert math.isnan(scores["sdr"]) and math.isnan(scores["nsdr"]) and scores["num_samples"] == 0
    references, estimates = generated(30, "noise", 2, num_samples=1000)
    meter.update(references, estimates, references.sum(axis=0))
    meter.reset()
    assert meter.compute()["num_samples"] == 0


def test_meter_rejects_mismatched_shapes():
    references, estimates = generated(31, "noise", 2, num_samples=1000)
    with pytest.raises(ValueError, match="mixture"):
        SeparationMeter().update(references, estimates, references.sum(axis=0)[:-1])
    with pytest.raises(ValueError, match="mixture"):
        SeparationMeter().update(references, estimates[:1], references.sum(axis=0))
    with pytest.raises(ValueError, match="mixture is all zeros"):
        SeparationMeter().update(references, estimates, np.zeros(1000))
