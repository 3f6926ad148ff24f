"""The report's figures: panel counts, what each panel shows, PNGs, headless use from threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from avlab.report import (
    attention_figure,
    loss_curves_figure,
    mask_figure,
    metric_bars,
    separation_figure,
    tracks_figure,
)
from avlab.widgets.render import instance_colors

PNG = b"\x89PNG\r\n\x1a\n"


def saved(figure: Figure, path: Path) -> bytes:
    figure.savefig(path)
    return path.read_bytes()


def frames(count: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_attention_maps_are_upsampled_bilinearly_over_each_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    attention, logan = rng.random((2, 3, 2, 2)), rng.random((2, 2, 2))
    figure = attention_figure(frames(2, 32), attention, logan, titles=["first", "second"])
    assert len(figure.axes) == 2 * (1 + 3 + 1) + 1  # frame, 3 maps, LoGAN M per row; a colour bar
    expected = torch.nn.functional.interpolate(torch.from_numpy(attention), size=(32, 32), mode="bilinear",
                                               align_corners=False).numpy()
    row = figure.axes[5:10]  # the second frame's panels
    assert row[0].get_ylabel() == "second" and np.array_equal(row[0].images[0].get_array(), frames(2, 32)[1])
    for q in range(3):
        heat = row[1 + q].images[1]
        np.testing.assert_allclose(heat.get_array(), expected[1, q], atol=1e-12)
        assert heat.get_clim() == (0.0, 1.0)
    merged = torch.nn.functional.interpolate(torch.from_numpy(logan)[:, None], size=(32, 32), mode="bilinear",
                                             align_corners=False).numpy()[:, 0]
    np.testing.assert_allclose(row[4].images[1].get_array(), merged[1], atol=1e-12)
    assert [a.get_title() for a in figure.axes[:5]] == ["frame", "attention 1", "attention 2", "attention 3", "LoGAN M"]
    assert saved(figure, tmp_path / "attention.png")[:8] == PNG


def test_attention_figure_rejects_maps_of_other_frames() -> None:
    with pytest.raises(ValueError, match="attention"):
        attention_figure(frames(2), np.zeros((3, 2, 1, 1)), np.zeros((3, 1, 1)))


def test_mask_panels_show_truth_and_prediction_with_the_iou(tmp_path: Path) -> None:
    truth = np.zeros((2, 16, 16), bool)
    truth[:, 2:10, 2:10] = True  # 64 pixels
    predicted = np.zeros((2, 16, 16), np.float32)
    predicted[0, 2:10, 6:14] = 0.9  # 32 shared of 96: IoU 1/3
    predicted[1] = 0.4  # below the threshold: nothing predicted
    figure = mask_figure(frames(2), predicted, truth, titles=["a", "b"])
    assert len(figure.axes) == 4
    top_a, bottom_a, top_b, bottom_b = figure.axes
    assert bottom_a.get_title() == "prediction, IoU 0.33" and bottom_b.get_title() == "prediction, IoU 0.00"
    assert top_a.get_title() == "a\nground truth"
    truth_color, predicted_color = instance_colors(2)
    shown = bottom_a.images[0].get_array()
    assert shown[5, 12].tolist() != frames(2)[0, 5, 12].tolist()  # predicted, not true: tinted
    assert shown[2, 2].tolist() == [255, 255, 255]  # the ground truth's outline
    assert np.array_equal(bottom_b.images[0].get_array()[8, 8], frames(2)[1, 8, 8])  # inside, nothing predicted
    tinted = top_a.images[0].get_array()[5, 5].astype(float)
    np.testing.assert_allclose(tinted, np.round(0.55 * frames(2)[0, 5, 5] + 0.45 * truth_color), atol=1)
    # Given IoUs are printed as given; bool predictions are used as they are.
    figure = mask_figure(frames(2), truth, truth, ious=[0.5, 0.25])
    assert [a.get_title() for a in figure.axes[1::2]] == ["prediction, IoU 0.50", "prediction, IoU 0.25"]
    assert saved(figure, tmp_path / "masks.png")[:8] == PNG
    assert predicted_color.shape == (3,)


def test_separation_panels_share_one_db_scale_relative_to_the_mixture(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    references = rng.random((2, 512, 30)) + 1e-3
    mixture = references.sum(axis=0)
    estimates = references.copy()
    estimates[1, :256] = 0.0  # a binary mask that dropped the low half
    figure = separation_figure(mixture, estimates, references, sdr=np.array([9.87, -1.0]), labels=["violin", "drum"],
                               sample_rate=11025, hop_length=256)
    assert len(figure.axes) == 1 + 2 * 2 + 1  # mixture, true and separated per source, colour bar
    mixture_axis, violin_true, violin_separated, drum_true, drum_separated = figure.axes[:5]
    assert [a.get_title() for a in figure.axes[:5]] == [
        "mixture", "violin: true", "violin: separated, SDR 9.9 dB", "drum: true", "drum: separated, SDR -1.0 dB"]
    decibels = mixture_axis.images[0].get_array()
    assert float(decibels.max()) == pytest.approx(0.0)
    peak = float(mixture.max())
    np.testing.assert_allclose(violin_true.images[0].get_array(), 20 * np.log10(references[0] / peak))
    assert float(drum_separated.images[0].get_array()[:256].max()) == pytest.approx(-80.0)  # the floor
    assert mixture_axis.images[0].get_extent() == pytest.approx([0.0, 30 * 256 / 11025, 0.0, 11025 / 2000])
    assert saved(figure, tmp_path / "separation.png")[:8] == PNG


def test_separation_figure_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(K, F, T\)"):
        separation_figure(np.ones((8, 4)), np.ones((2, 8, 4)), np.ones((2, 8, 5)))


def test_tracks_are_tinted_by_id_and_named_at_their_centroids(tmp_path: Path) -> None:
    video = frames(5, 20)
    first = np.zeros((5, 20, 20), bool)
    first[:, 2:6, 4:12] = True  # centroid (row 3.5, col 7.5)
    second = np.zeros((5, 20, 20), bool)
    second[4, 10:20, 10:20] = True  # only on the last frame
    figure = tracks_figure(video, {0: first, 4: second}, labels={0: "violin", 4: "drum"}, scores={0: 0.91, 4: 0.35},
                           num_frames=3)
    assert len(figure.axes) == 3
    assert [a.get_xlabel() for a in figure.axes] == ["frame 0", "frame 2", "frame 4"]
    texts = figure.axes[0].texts
    assert [t.get_text() for t in texts] == ["0 violin"] and texts[0].get_position() == pytest.approx((7.5, 3.5))
    assert [t.get_text() for t in figure.axes[2].texts] == ["0 violin", "4 drum"]
    assert figure.axes[2].texts[1].get_position() == pytest.approx((14.5, 14.5))
    (legend,) = figure.legends  # below the strip
    assert [t.get_text() for t in legend.get_texts()] == ["0 violin (0.91)", "4 drum (0.35)"]
    colors = instance_colors(5)
    shown = figure.axes[2].images[0].get_array()
    np.testing.assert_allclose(shown[15, 15], np.round(0.55 * video[4, 15, 15] + 0.45 * colors[4]), atol=1)
    assert saved(figure, tmp_path / "tracks.png")[:8] == PNG
    # Short videos show every frame once.
    assert len(tracks_figure(video[:2], {1: first[:2]}).axes) == 2
    # Past max_tracks, the strongest tracks are drawn.
    many = tracks_figure(video, {0: first, 4: second, 7: first}, scores={0: 0.2, 4: 0.9, 7: 0.5}, max_tracks=2)
    assert [t.get_text() for t in many.legends[0].get_texts()] == ["4 (0.90)", "7 (0.50)"]


def test_loss_curves_read_lightning_csv_logs_per_epoch(tmp_path: Path) -> None:
    logged = tmp_path / "a.csv"
    logged.write_text("epoch,step,train/loss_step,train/loss_epoch,val/loss,val/miou\n"
                      "0,4,0.9,,,\n0,7,,0.85,,\n0,7,,,0.8,0.3\n1,9,0.7,,,\n1,15,,0.65,,\n1,15,,,0.62,0.4\n")
    steps_only = tmp_path / "b.csv"  # no epoch means, no validation: the epoch's mean step loss
    steps_only.write_text("epoch,step,train/loss_step\n0,0,1.0\n0,1,0.5\n1,2,0.4\n1,3,0.2\n")
    empty = tmp_path / "c.csv"
    empty.write_text("epoch,step,val/miou\n0,1,0.2\n")
    figure = loss_curves_figure({"avisnet": logged, "pixelplayer": steps_only, "nothing": empty})
    assert len(figure.axes) == 3 and [a.get_title() for a in figure.axes] == ["avisnet", "pixelplayer", "nothing"]
    train, val = figure.axes[0].lines
    assert (train.get_label(), val.get_label()) == ("train", "validation")
    assert train.get_xdata().tolist() == [1, 2] and train.get_ydata().tolist() == pytest.approx([0.85, 0.65])
    assert val.get_ydata().tolist() == pytest.approx([0.8, 0.62])
    [steps] = figure.axes[1].lines
    assert steps.get_ydata().tolist() == pytest.approx([0.75, 0.3])
    assert not figure.axes[2].lines and figure.axes[2].texts[0].get_text() == "no losses logged"
    assert saved(figure, tmp_path / "losses.png")[:8] == PNG
    with pytest.raises(FileNotFoundError, match="missing"):
        loss_curves_figure({"missing": tmp_path / "none.csv"})


def test_metric_bars_draw_means_errors_and_paper_diamonds(tmp_path: Path) -> None:
    table = [{"label": "LoGAN", "miou": 0.6, "miou_std": 0.05, "sdr": 4.0},
             {"label": "EM", "miou": 0.5, "miou_std": float("nan"), "sdr": 3.0, "sdr_std": 0.5},
             {"label": "EA", "miou": 0.4}]
    figure = metric_bars(table, ["miou", "sdr"], paper={"LoGAN": {"miou": 0.8}, "EA": {"miou": 0.7, "sdr": 5.0}},
                         title="fusion ablation")
    assert len(figure.axes) == 2 and figure.get_suptitle() == "fusion ablation"
    miou, sdr = figure.axes
    assert [p.get_height() for p in miou.patches] == pytest.approx([0.6, 0.5, 0.4])
    assert [t.get_text() for t in miou.get_xticklabels()] == ["LoGAN", "EM", "EA"]
    [bars] = [c for c in miou.containers if isinstance(c, BarContainer)]
    [errors] = bars.errorbar.lines[2]  # the vertical error segments
    spans = [float(s[1, 1] - s[0, 1]) for s in errors.get_segments()]
    assert spans == pytest.approx([0.1, 0.0, 0.0])  # +-std, none where the std is NaN or missing
    [diamonds] = miou.collections[1:]
    assert diamonds.get_offsets().tolist() == [[0.0, 0.8], [2.0, 0.7]]
    assert [t.get_text() for t in miou.get_legend().get_texts()] == ["paper (other data)"]
    assert sdr.collections[1].get_offsets().tolist() == [[2.0, 5.0]]
    assert metric_bars(table, ["miou"]).axes[0].get_legend() is None
    assert saved(figure, tmp_path / "bars.png")[:8] == PNG


def test_figures_render_from_threads(tmp_path: Path) -> None:
    truth = np.zeros((1, 16, 16), bool)
    truth[0, 4:8, 4:8] = True

    def draw(k: int) -> bytes:
        return saved(mask_figure(frames(1, seed=k), truth, truth), tmp_path / f"{k}.png")

    with ThreadPoolExecutor(max_workers=2) as pool:
        pictures = list(pool.map(draw, range(4)))
    assert all(p[:8] == PNG for p in pictures) and len(set(pictures)) == 4
