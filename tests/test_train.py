"""Trainers, checkpoints and free-run simulation on small problems."""

import math

import numpy as np
import pytest
import torch

import odernn_lite as ol


def rlc_record(n=600, seed=0, **kwargs):
    return ol.from_dataframe(ol.circuits.linear_rlc(n, seed=seed, **kwargs))


def small_model(record, *, encoder_window=5, seed=0, field="ctrnn"):
    torch.manual_seed(seed)
    return ol.ODEModel(field, 4, encoder_window=encoder_window).set_scaling(record)


def grads(model):
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def reference_gradient(model, record, *, first, last, chunk):
    """Autograd of chunk `last`'s loss, written out as one plain loop: the state is carried
    without a graph up to chunk `first` and with one from there on."""
    rec = model.to_model_units(record)
    n = model.encoder_window
    model.zero_grad()
    h = model.initial_state(rec.u[None, :n], rec.y[None, :n], (rec.t[n] - rec.t[:n])[None])
    for j in range(last + 1):
        if j == first and j > 0:
            h = h.detach()
        a = n + j * chunk
        sl = slice(a, a + chunk + 1)
        y_hat, hs, _ = model.rollout((rec.t[sl] - rec.t[a])[None], rec.u[sl][None], h)
        h = hs[:, -1]
    torch.mean((y_hat[:, 1:] - rec.y[sl][None, 1:]) ** 2).backward()
    return grads(model)


def test_tbptt_equals_full_backprop_when_k2_covers_the_record():
    record = rlc_record(5 + 4 * 6 + 1)  # encoder window + 4 chunks of 6
    model = small_model(record)
    trainer = ol.TBPTTTrainer(model, chunk=6, k1=4, k2=4, optimizer="sgd", lr=0.0, progress=False)
    trainer.fit(record, iters=1)
    tbptt = grads(model)
    # the same loss as one solve over the whole record, by plain autograd
    rec = model.to_model_units(record)
    model.zero_grad()
    h0 = model.initial_state(rec.u[None, :5], rec.y[None, :5], (rec.t[5] - rec.t[:5])[None])
    y_hat, _, _ = model.rollout((rec.t[5:] - rec.t[5])[None], rec.u[None, 5:], h0)
    torch.mean((y_hat[:, 1:] - rec.y[None, 6:]) ** 2).backward()
    full = grads(model)
    assert tbptt.abs().max() > 0
    torch.testing.assert_close(tbptt, full, rtol=1e-4, atol=1e-6)


def test_chunks_older_than_k2_contribute_nothing():
    record = rlc_record(5 + 6 * 5 + 1)
    model = small_model(record)
    trainer = ol.TBPTTTrainer(model, chunk=5, k1=1, k2=2, optimizer="sgd", lr=0.0, progress=False)
    trainer.fit(record, iters=4)  # the 4th update: loss on chunk 3, backpropagated through chunks 2 and 3
    tbptt = grads(model)
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())  # it only reaches chunk 0
    assert trainer.last_h0.is_leaf and trainer.last_h0.grad is not None and trainer.last_h0.grad.abs().sum() > 0
    torch.testing.assert_close(tbptt, reference_gradient(model, record, first=2, last=3, chunk=5), rtol=1e-4, atol=1e-7)


def test_zero_grad_before_every_update():
    record = rlc_record(5 + 3 * 5 + 1)
    model = small_model(record)
    trainer = ol.TBPTTTrainer(model, chunk=5, k1=1, optimizer="sgd", lr=0.0, progress=False)
    trainer.fit(record, iters=2)
    # after the 2nd update the gradient is chunk 1's alone, not chunk 0's + chunk 1's
    torch.testing.assert_close(grads(model), reference_gradient(model, record, first=1, last=1, chunk=5), rtol=1e-4, atol=1e-7)


def test_tbptt_history_and_epochs():
    record = rlc_record(5 + 3 * 5 + 1)
    trainer = ol.TBPTTTrainer(small_model(record), chunk=5, k1=2, progress=False)
    history = trainer.fit(record, iters=3)
    assert list(history["epoch"]) == [0, 0, 1] and list(history["chunks"]) == ["0-1", "2-2", "0-1"]
    assert {"loss", "grad_norm", "nfe", "seconds"} <= set(history.columns)
    assert any(c.startswith("grad/field.") for c in history.columns)
    assert (history["nfe"] > 0).all()


@pytest.mark.parametrize("kind", ["ms", "tbptt"])
def test_checkpoint_resume_reproduces_the_uninterrupted_run(tmp_path, kind):
    record = rlc_record(400)

    def make():
        model = small_model(record, seed=3)
        if kind == "ms":
            return model, ol.MultipleShootingTrainer(model, window=[(0, 10), (3, 20)], batch_size=8, seed=7, progress=False)
        return model, ol.TBPTTTrainer(model, chunk=10, k1=2, k2=3, seed=7, progress=False)

    model_a, trainer_a = make()
    trainer_a.fit(record, iters=6)

    model_b, trainer_b = make()
    trainer_b.fit(record, iters=3)
    trainer_b.save(tmp_path / "ckpt.pt")
    model_c, trainer_c = make()
    trainer_c.load(tmp_path / "ckpt.pt")
    trainer_c.fit(record, iters=3)

    for p_a, p_c in zip(model_a.parameters(), model_c.parameters()):
        assert torch.equal(p_a, p_c)
    assert trainer_c.step == 6 and len(trainer_c.history) == 6
    np.testing.assert_array_equal(trainer_a.history["loss"], trainer_c.history["loss"])

    loaded, ckpt = ol.load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt["model_config"] == model_b.config()
    torch.testing.assert_close(loaded.y_std, model_b.y_std)  # the scaling travels with the weights


def test_nan_guard_restores_the_last_good_weights():
    record = rlc_record(300)

    class Faulty(ol.MultipleShootingTrainer):
        def _loss(self, data):
            loss, nfe, extra = super()._loss(data)
            return (loss * math.nan if self.step == 2 else loss), nfe, extra

    model = small_model(record)
    trainer = Faulty(model, window=10, batch_size=4, progress=False)
    trainer.fit(record, iters=2)
    good = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ol.TrainingDiverged, match=r"update 3: the loss became nan.*restored to update 2"):
        trainer.fit(record, iters=5)
    assert all(torch.equal(a, b) for a, b in zip(good, model.parameters()))
    assert trainer.step == 2


def test_short_fit_lowers_the_validation_error():
    record = rlc_record(3000, seed=2)
    train, val = ol.split(record, 0.3)
    model = small_model(train, encoder_window=10, field="neural-ss")
    before = ol.simulate(model, val).scores()["rmse"]
    trainer = ol.MultipleShootingTrainer(model, window=30, batch_size=32, lr=1e-2, seed=0, progress=False)
    trainer.fit(train, iters=60)
    after = ol.simulate(model, val).scores()["rmse"]
    assert after < 0.7 * before


def test_simulate_on_irregular_stamps_with_queries():
    record = rlc_record(500, jitter=0.6, drop=0.2)
    assert not record.is_regular
    model = small_model(record, encoder_window=5)
    ol.MultipleShootingTrainer(model, window=15, batch_size=8, progress=False).fit(record, iters=3)
    sim = ol.simulate(model, record)
    assert torch.isnan(sim.y_pred[:5]).all() and torch.isfinite(sim.y_pred[5:]).all()
    # the same record in smaller chunks gives the same free run (the state is carried exactly)
    torch.testing.assert_close(ol.simulate(model, record, chunk=37).y_pred[5:], sim.y_pred[5:], rtol=1e-4, atol=1e-3)
    # queries at the sample times reproduce the outputs there; queries between samples are finite
    q = torch.cat([record.t[100:103], (record.t[200:202] + record.t[201:203]) / 2])
    with_queries = ol.simulate(model, record, query_times=q)
    torch.testing.assert_close(with_queries.query_y[:3], sim.y_pred[100:103], rtol=1e-4, atol=1e-3)
    assert torch.isfinite(with_queries.query_y).all() and with_queries.query_y.shape == (5, 1)


def test_simulate_checks_its_arguments():
    record = rlc_record(100)
    model = small_model(record, encoder_window=5)
    with pytest.raises(ValueError, match="encoder takes exactly 5"):
        ol.simulate(model, record, init_window=3)
    with pytest.raises(ValueError, match="query times must lie"):
        ol.simulate(model, record, query_times=[record.t[-1] + 1.0])


def test_gru_baseline_trains_with_the_same_trainer():
    record = rlc_record(400)
    torch.manual_seed(0)
    model = ol.GRUModel(8, encoder_window=5).set_scaling(record)
    history = ol.MultipleShootingTrainer(model, window=20, batch_size=8, progress=False).fit(record, iters=3)
    assert (history["nfe"] == 0).all()
    assert torch.isfinite(ol.simulate(model, record).y_pred[5:]).all()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid fields"):
        ol.ODEModel("lstm")
    with pytest.raises(ValueError, match="valid optimizers"):
        ol.MultipleShootingTrainer(ol.ODEModel("ctrnn", 2), optimizer="lbfgs2")


def test_anneal_lowers_the_learning_rate_along_a_cosine():
    record = rlc_record(300)
    trainer = ol.MultipleShootingTrainer(small_model(record), window=10, batch_size=4, lr=1e-2, anneal=0.1, progress=False)
    lr = trainer.fit(record, iters=10)["lr"].to_numpy()
    assert lr[0] == pytest.approx(1e-2) and (np.diff(lr) < 0).all()
    assert lr[-1] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(0.9 * math.pi))))
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)  # restored for the next fit call


def test_anneal_follows_the_updates_not_the_clock_when_iters_is_given(monkeypatch):
    """With ``iters``, a slow machine (here: a clock that jumps 1000 s per reading) gets the same schedule."""
    record = rlc_record(300)
    fast = ol.MultipleShootingTrainer(small_model(record), window=10, batch_size=4, lr=1e-2, anneal=0.1, progress=False)
    lr_fast = fast.fit(record, iters=10, max_seconds=1e5)["lr"].to_numpy()
    clock = iter(range(0, 10**8, 1000))
    monkeypatch.setattr("odernn_lite.train.time.perf_counter", lambda: float(next(clock)))
    slow = ol.MultipleShootingTrainer(small_model(record), window=10, batch_size=4, lr=1e-2, anneal=0.1, progress=False)
    lr_slow = slow.fit(record, iters=10, max_seconds=1e5)["lr"].to_numpy()
    np.testing.assert_array_equal(lr_fast, lr_slow)
