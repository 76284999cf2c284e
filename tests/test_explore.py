"""The explorer: settings, one short run per training loop, and the widgets driven from code."""

import math

import pytest
import torch

import odernn_lite as ol
from odernn_lite.explore import Settings, explorer, run


@pytest.fixture(scope="module")
def records():
    train = ol.from_dataframe(ol.circuits.nonlinear_rlc(200, seed=0))
    test = ol.from_dataframe(ol.circuits.nonlinear_rlc(100, seed=1))
    return train, test


@pytest.mark.parametrize(
    "changes, message",
    [(dict(loop="adjoint"), "unknown loop"), (dict(time_unit="h"), "unknown time_unit"),
     (dict(method="rk45"), "unknown method"), (dict(k1=3, k2=2), "k1 <= k2"), (dict(chunk=0), "chunk")],
)  # fmt: skip
def test_settings_reject_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        Settings(**changes)


def test_posted_settings_are_the_forum_design():
    s = Settings.posted(updates=5)
    assert not (s.zero_grad or s.decay or s.readout or s.interpolate or s.standardize)
    assert (s.time_unit, s.method, s.rtol, s.lr, s.updates) == ("µs", "dopri5", 1e-7, 1e-3, 5)


def test_forum_run_reports_every_update_and_scores_the_free_run(records):
    train, test = records
    seen = []
    result = run(Settings(updates=40, chunk=10), train, test, on_loss=seen.append)
    assert result.error is None and seen == result.losses
    assert len(result.losses) == 40  # 200 samples in chunks of 10: 20 updates a pass, 2 passes
    assert result.y_pred.shape == (len(test), 1) and torch.isfinite(result.y_pred).all()
    assert result.fit == pytest.approx(ol.fit(test.y[10:, 0], result.y_pred[10:, 0]))
    assert result.nfe > 0


def test_forum_callback_sees_the_losses_the_history_sums(records):
    train, _ = records
    losses = []
    history = ol.forum.train_forum(train, ol.forum.ForumDesign(decay=True, zero_grad=True), iters=2, n_chunks=20,
                                   method="rk4", progress=False, callback=lambda step, loss: losses.append((step, loss)))  # fmt: skip
    assert [s for s, _ in losses] == list(range(1, 41))
    per_pass = [sum(loss for _, loss in losses[i * 20 : (i + 1) * 20]) for i in range(2)]
    assert per_pass == pytest.approx(history.history.loss.tolist())


def test_forum_run_in_volts_divides_the_loss_by_the_output_variance(records):
    train, test = records
    volts = run(Settings(standardize=False, updates=20), train, test)
    seen = []
    ol.forum.train_forum(train, ol.forum.ForumDesign(zero_grad=True, decay=True, readout=True, interpolate=True,
                                                     time_scale=1 / (train.dt_median * train.time_scale)),
                         iters=1, n_chunks=20, lr=1e-2, method="rk4", rtol=1e-4, atol=1e-6, progress=False,
                         callback=lambda step, loss: seen.append(loss))  # fmt: skip
    y_var = float(train.y.var(unbiased=False))
    assert volts.losses == pytest.approx([loss / y_var for loss in seen])


def test_tbptt_cost_grows_with_k2(records):
    train, test = records
    short = run(Settings(loop="tbptt", updates=10), train, test)
    long = run(Settings(loop="tbptt", updates=10, k1=1, k2=3), train, test)
    assert short.error is None and long.error is None
    assert len(short.losses) == len(long.losses) == 10
    # update j solves min(j, 3) chunks with k2 = 3 (fewer at the record's start), one with k2 = 1
    assert long.nfe == short.nfe * (1 + 2 + 3 * 8) // 10


def test_tbptt_time_unit_changes_the_model_not_the_data(records):
    train, test = records
    a = run(Settings(loop="tbptt", updates=5), train, test)
    b = run(Settings(loop="tbptt", updates=5, time_unit="µs"), train, test)
    assert a.losses[0] != b.losses[0]  # 0.5 µs per sample: the same weights see half the time span


def test_explorer_widgets_drive_a_run(records):
    train, test = records
    ui = explorer(train, test, Settings(updates=20), redraw_every=10)
    assert ui.settings() == Settings(updates=20)
    assert ui.controls["k1"].disabled and not ui.controls["zero_grad"].disabled
    ui.controls["loop"].value = "tbptt"
    assert not ui.controls["k1"].disabled and ui.controls["zero_grad"].disabled
    ui.controls["k1"].value = 4  # k2 follows
    assert ui.controls["k2"].value == 4
    ui.controls["k2"].value = 2  # k1 follows
    assert ui.controls["k1"].value == 2
    result = ui.train_once()
    assert ui.last is result and result.settings.loop == "tbptt" and (result.settings.k1, result.settings.k2) == (2, 2)
    assert result.error is None and "FIT" in ui.status.value and not ui.button.disabled
    assert math.isfinite(result.fit)


def test_a_failed_run_returns_its_error(records, monkeypatch):
    train, test = records

    def give_up(*args, **kwargs):
        raise ol.SolverError("dopri5 took more than 20000 steps")

    monkeypatch.setattr("odernn_lite.explore.train_forum", give_up)
    result = run(Settings(), train, test)
    assert result.error == "dopri5 took more than 20000 steps" and result.y_pred is None and math.isnan(result.fit)
    ui = explorer(train, test)
    ui.train_once()
    assert "stopped" in ui.status.value and "20000" in ui.status.value


def test_smoothed_is_a_running_mean_over_the_last_n():
    from odernn_lite.explore import smoothed

    assert smoothed([1.0, 3.0, 5.0, 7.0], n=2) == ([1, 2, 3, 4], [1.0, 2.0, 4.0, 6.0])
    assert smoothed([], n=3) == ([], [])


def test_updates_per_pass(records):
    from odernn_lite.explore import updates_per_pass

    train, _ = records  # 200 samples
    assert updates_per_pass(Settings(chunk=10), train) == 20
    assert updates_per_pass(Settings(loop="tbptt", chunk=10, k1=2, k2=2), train) == 10  # 19 chunks, 2 per update
