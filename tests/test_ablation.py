"""The cumulative ablation runner of chapter 7, at a tiny budget."""

import pytest
import torch

import odernn_lite as ol
from odernn_lite.ablation import STEPS, run_ablation
from odernn_lite.forum import ForumRun


@pytest.fixture(scope="module")
def ablation():
    train = ol.from_dataframe(ol.circuits.nonlinear_rlc(100, seed=0))
    test = ol.from_dataframe(ol.circuits.nonlinear_rlc(80, seed=1))
    table, models = run_ablation(train, test, updates=10, chunk=10, state=4, batch=8, progress=False)
    return train, test, table, models


def test_every_step_is_trained_for_the_same_updates_and_scored_on_the_test_record(ablation):
    _, test, table, models = ablation
    assert list(table.fix) == [name for name, _, _ in STEPS]
    assert (table.updates == 10).all() and (table.seconds > 0).all() and (table.nfe > 0).all()
    for name, (_, y_hat) in models.items():
        assert y_hat.shape == (len(test), 1)
        row = table[table.fix == name].iloc[0]
        assert row.val_fit == pytest.approx(ol.fit(test.y[10:, 0], y_hat[10:, 0]))
    assert table.delta_fit.iloc[1:].to_numpy() == pytest.approx(table.val_fit.diff().iloc[1:].to_numpy())


def test_steps_switch_on_one_fix_after_another(ablation):
    _, _, table, models = ablation
    runs = [models[name][0] for name, _, _ in STEPS]
    designs = [run.design for run in runs[:6]]
    assert all(isinstance(run, ForumRun) for run in runs[:6])
    assert designs[0] == ol.forum.ForumDesign()
    switched = [(d.zero_grad, d.decay, d.readout, d.interpolate, d.standardize) for d in designs]
    assert switched == [tuple(i < k for i in range(5)) for k in range(6)]
    trainers = runs[6:]
    assert isinstance(trainers[0], ol.TBPTTTrainer) and trainers[0].model.config()["field"] == "forum"
    assert trainers[1].model.config()["field"] == "neural-ss" and trainers[1].model.encoder_window == 0
    assert all(isinstance(t, ol.MultipleShootingTrainer) for t in trainers[2:])
    assert [t.window_at(0) for t in trainers[2:]] == [10, 50, 50]
    assert trainers[-1].clip == 10.0 and trainers[-1].anneal == 0.05 and trainers[-2].clip is None


def test_steps_are_deterministic_for_a_seed(ablation):
    train, test, table, _ = ablation
    again, _ = run_ablation(train, test, updates=10, chunk=10, state=4, batch=8, steps=3, progress=False)
    assert len(again) == 3
    torch.testing.assert_close(torch.tensor(again.val_fit.to_numpy()), torch.tensor(table.val_fit.to_numpy()[:3]))
