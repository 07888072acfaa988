"""nanoseq plot: each picture is drawn for real and looked at: its size, that it is not blank,
that it has its axes and titles."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nanoseq import plots
from nanoseq.cli import main
from nanoseq.errors import InputError
from nanoseq.io import Call, CallsWriter
from nanoseq.signal.readers import read_signal


def looks_drawn(path, width, height):
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # not one colour


def draw(tmp_path, *args, name="picture.png"):
    result = CliRunner().invoke(main, ["plot", *map(str, args), "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.stderr
    return tmp_path / name


def test_training_curves_of_any_family(tmp_path):
    (tmp_path / "training.csv").write_text(
        "epoch,learning_rate,loss,seconds,val_accuracy,val_loss\n"
        "0,0.001,300,60,0.6,250\n1,0.0008,250,120,0.7,230\n2,0.0001,240,180,0.72,225\n"
    )
    figure = plots.training(tmp_path)
    titles = [axes.get_ylabel() for axes in figure.axes]
    assert titles == ["loss", "validation", "learning rate"]
    looks_drawn(draw(tmp_path, "training", tmp_path), 800, 500)
    assert draw(tmp_path, "training", tmp_path, name="p.svg").read_text().startswith("<?xml")
    with pytest.raises(InputError, match="no training.csv"):
        plots.training(tmp_path / "nothing")


def test_squiggle_with_the_bases_placed_by_the_moves(tmp_path, sample_dir):
    reads = sample_dir / "reads/lambda.pod5"
    read = next(iter(read_signal([reads])))
    moves = np.zeros(read.num_samples // 6, np.uint8)
    moves[::3] = 1  # a base every 18 samples
    call = Call("ACGT" * (int(moves.sum()) // 4), np.full(moves.sum() // 4 * 4, 20), moves, 6)
    call.moves = call.moves[: len(call.sequence) * 3]
    with CallsWriter(tmp_path / "calls.bam") as writer:
        writer.write(read, call)
    figure = plots.squiggle([reads], read.read_id, tmp_path / "calls.bam", samples=360)
    (axes,) = figure.axes
    assert len(axes.texts) == 20 and axes.get_ylabel() == "current (pA)"
    assert read.read_id in axes.get_title()
    looks_drawn(draw(tmp_path, "squiggle", reads, "--read-id", read.read_id), 1200, 400)
    with pytest.raises(InputError, match="no read nope"):
        plots.squiggle([reads], "nope")


def test_calibration_from_evaluate(tmp_path):
    metrics = tmp_path / "metrics.json"
    bins = [{"q": q, "bases": 100 * q, "errors": 10, "measured_q": q + 3.0} for q in range(2, 30)]
    metrics.write_text(json.dumps({"calibration": bins}))
    figure = plots.calibration(metrics)
    assert figure.axes[0].get_xlabel() == "predicted Q"
    assert len(figure.axes[0].collections) == 1  # the bins; no intervals in these metrics
    for b in bins:
        b["measured_q_interval"] = [b["measured_q"] - 1, b["measured_q"] + 2]
    metrics.write_text(json.dumps({"calibration": bins}))
    (bars,) = plots.calibration(metrics).axes[0].collections[1:]  # an interval a bin
    assert len(bars.get_segments()) == len(bins)
    looks_drawn(draw(tmp_path, "calibration", metrics), 500, 500)
    with pytest.raises(InputError, match="not the metrics of nanoseq evaluate"):
        plots.calibration(tmp_path / "nothing.json")
