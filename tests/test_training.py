"""The shared training loop: the learning-rate schedule, the time budget, resume."""

import csv

import keras
import numpy as np
import pytest

from nanoseq.errors import InputError
from nanoseq.training import Recipe, TrainingRun, WarmupCosine, adam, fit


def test_schedule_warms_up_then_decays_to_one_percent():
    schedule = WarmupCosine(peak=1.0, total_steps=1000, warmup=50)
    rates = [schedule.rate(step) for step in range(1001)]
    assert rates[0] == pytest.approx(1 / 50, rel=0.02)
    assert np.all(np.diff(rates[:50]) > 0)  # linear warm-up over 50 steps
    assert max(rates) == pytest.approx(1.0, abs=0.01)
    assert np.all(np.diff(rates[60:]) < 0)  # then only down
    assert rates[500] == pytest.approx(0.01 + 0.99 * 0.5, rel=1e-6)
    assert rates[1000] == pytest.approx(0.01)


def test_schedule_follows_the_time_budget_when_it_runs_ahead_of_the_steps():
    schedule = WarmupCosine(peak=1.0, total_steps=10_000)
    assert schedule.rate(100, time_share=0.5) == pytest.approx(schedule.rate(5_000))
    assert schedule.rate(100, time_share=1.0) == pytest.approx(0.01)
    assert schedule.rate(9_000, time_share=0.5) == schedule.rate(9_000)  # steps further on
    # a short run's warm-up is its first 10 %, whichever of steps or time says so
    assert schedule.rate(5, time_share=0.1) == pytest.approx(schedule.rate(1_000))


def tiny_regression():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])


def rows(folder):
    with open(folder / "training.csv") as handle:
        return list(csv.DictReader(handle))


def test_a_run_stopped_by_its_time_budget_ends_at_low_learning_rates(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")  # epochs of 8 steps: many per second
    y = x.sum(axis=1, keepdims=True)
    recipe = Recipe(tiny_regression, adam(1.0), loss="mse", peak_learning_rate=0.01)
    # the budget, not the epochs, ends this run
    fit(TrainingRun(tmp_path, epochs=100_000, max_minutes=0.1), recipe, (x, y), batch_size=8)
    first = rows(tmp_path)
    assert 1 < len(first) < 100_000
    seconds = [float(r["seconds"]) for r in first]
    # stopped by the budget: where the epoch's end, its tail timed on the epoch before, would
    # pass 6 s; so it may end short of 6 s, by less than that epoch's length
    before = seconds[-2] - (seconds[-3] if len(seconds) > 2 else 0.0)
    assert seconds == sorted(seconds) and seconds[-1] + before >= 6.0
    rates = [float(r["learning_rate"]) for r in first]
    assert max(rates) > 0.3 * 0.01  # it went through high rates
    assert rates[-1] < 0.02 * 0.01  # and annealed to its floor (1 %) within the budget

    # a resumed run counts the time already spent against the same budget: it ends at once
    run = TrainingRun(tmp_path, epochs=100_000, max_minutes=0.1, resume=True)
    fit(run, recipe, (x, y), batch_size=8)
    second = rows(tmp_path)
    assert len(second) == len(first) + 1
    assert float(second[-1]["seconds"]) >= seconds[-1]
    assert float(second[-1]["learning_rate"]) == pytest.approx(0.01 * 0.01, rel=0.01)


def test_the_best_model_survives_a_resumed_run_that_does_worse(tmp_path, caplog):
    """The best score lives in the run's log: a resumed run saves model.keras only when it
    beats the best of the earlier epochs, not its own first epoch."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    data, validation = (x[:192], y[:192]), (x[192:], y[192:])
    good = Recipe(tiny_regression, adam(1.0), loss="mse", peak_learning_rate=0.05)
    with caplog.at_level("WARNING"):
        fit(TrainingRun(tmp_path, epochs=4, resume=True), good, data, validation, batch_size=16)
    assert "no checkpoint to resume from" in caplog.text
    best = keras.saving.load_model(tmp_path / "model.keras").get_weights()
    wild = Recipe(tiny_regression, adam(1.0), loss="mse", peak_learning_rate=100.0)
    fit(TrainingRun(tmp_path, epochs=6, resume=True), wild, data, validation, batch_size=16)
    logged = [float(row["val_loss"]) for row in rows(tmp_path)]
    assert len(logged) == 6 and min(logged[4:]) > min(logged[:4])  # the resumed epochs: worse
    kept = keras.saving.load_model(tmp_path / "model.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(kept, best, strict=True))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's XLA")
def test_a_step_tensorflow_cannot_compile_never_asks_xla(tmp_path):
    x = np.ones((16, 4), "float32")
    refused = Recipe(tiny_regression, adam(1.0), loss="mse", xla_on_cpu=True, xla_refused="why")
    model, _ = fit(TrainingRun(tmp_path / "default"), refused, (x, x[:, :1]), batch_size=8)
    assert model.jit_compile is False  # not the recipe's XLA on CPUs, nor Keras's on GPUs
    with pytest.raises(InputError, match="^XLA: why$"):  # asked for: refused before the work
        fit(TrainingRun(tmp_path / "asked", xla=True), refused, (x, x[:, :1]), batch_size=8)
    assert not any((tmp_path / "asked").iterdir())
