"""The forum loop of ``odernn_lite.forum`` against the posted code (patched as in chapter 2)."""

import pytest
import torch
from torch import nn
from torchdiffeq import odeint

import odernn_lite as ol
from odernn_lite.forum import ForumDesign, forum_pass, free_run, train_forum

N, CHUNKS, HIDDEN = 200, 20, 10


@pytest.fixture(scope="module")
def record():
    return ol.from_dataframe(ol.circuits.linear_rlc(N, input_std=2.0, seed=0))


class NN_Module(nn.Module):  # the post's step 4, with its missing `return f`
    def __init__(self, hidden_size):
        super().__init__()
        self.rnn = nn.RNN(1, hidden_size, batch_first=True)
        self.dense = nn.Linear(hidden_size, 1)

    def get_new_observation(self, x0):
        self.x0 = x0

    def forward(self, t, init_conditions):
        y0, h0 = init_conditions
        ht, hn = self.rnn(self.x0, h0)
        return self.dense(ht), hn


def posted_pass(record, func, optimizer, *, zero_grad):
    """One pass of the post's steps 1-3 and 5 (patched: states[-1][1], an optimizer)."""
    t_train = (1e6 * record.t).reshape(CHUNKS, -1, 1)
    x_train, y_train = record.u.reshape(CHUNKS, -1, 1), record.y.reshape(CHUNKS, -1, 1)
    loss_fn, tot_loss = nn.MSELoss(), 0.0
    states = [(None, torch.zeros(1, 1, HIDDEN))]
    for b in range(CHUNKS):
        func.get_new_observation(x_train[b, 0].view(-1, 1, 1))
        if zero_grad:
            optimizer.zero_grad()
        state = states[-1][1].detach()
        pred, new_state = odeint(func, (y_train[b, 0].view(-1, 1, 1), state), t_train[b, :].view(-1))
        states.append((state, new_state[-1].view(1, 1, -1)))
        loss = loss_fn(pred, y_train[b, :].view(-1, 1, 1, 1))
        tot_loss = tot_loss + loss
        loss.backward()
        optimizer.step()
    return float(tot_loss.detach())


@pytest.mark.parametrize("zero_grad", [False, True])
def test_train_forum_reproduces_the_posted_loop(record, zero_grad):
    torch.manual_seed(0)
    func = NN_Module(HIDDEN)
    opt = torch.optim.Adam(func.parameters(), lr=1e-3)
    expected = [posted_pass(record, func, opt, zero_grad=zero_grad) for _ in range(2)]
    run = train_forum(record, ForumDesign(zero_grad=zero_grad), iters=2, n_chunks=CHUNKS, hidden_size=HIDDEN, seed=0, progress=False)
    assert run.history["loss"].tolist() == pytest.approx(expected, rel=1e-4)
    for (name, p), q in zip(run.field.named_parameters(), func.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5, msg=name)


def test_forum_field_matches_the_posted_module():
    torch.manual_seed(0)
    posted = NN_Module(HIDDEN)
    field = ol.ForumRNNField(HIDDEN)
    field.load_state_dict(posted.state_dict())
    x0 = torch.tensor([[[0.7]]])
    posted.get_new_observation(x0)
    field.get_new_observation(x0)
    state = (torch.randn(1, 1, 1), torch.randn(1, 1, HIDDEN))
    for a, b in zip(posted(0.0, state), field(torch.tensor(0.0), state)):
        torch.testing.assert_close(a, b)


def test_decay_keeps_the_state_bounded_and_the_posted_field_drifts():
    torch.manual_seed(0)
    t = torch.linspace(0, 200, 11, dtype=torch.float64)
    u = torch.tensor([[1.5]])
    drifting = ol.ForumRNNField(4, output="readout").set_input(u)
    leaky = ol.ForumRNNField(4, output="readout", decay=True).set_input(u)
    leaky.load_state_dict(drifting.state_dict())
    h_drift = ol.solve(drifting, torch.zeros(1, 4), t).states
    h_leak = ol.solve(leaky, torch.zeros(1, 4), t).states
    assert h_leak.abs().max() < 1.0
    assert h_drift.abs().max() > 100  # |dh/dt| -> 1 per unit time once saturated
    assert leaky.readout(h_leak).shape == (1, 11, 1)


def test_forum_pass_starts_every_chunk_from_the_measured_output(record):
    run = train_forum(record, iters=1, n_chunks=CHUNKS, hidden_size=HIDDEN, progress=False)
    df = forum_pass(run.field, record, n_chunks=CHUNKS)
    starts = df.groupby("chunk").head(1)
    assert len(df) == N
    torch.testing.assert_close(torch.tensor(starts.y_pred.to_numpy()), torch.tensor(starts.y.to_numpy()))
    assert ((df.saturated >= 0) & (df.saturated <= 1)).all()


def test_persistence_is_the_mse_of_holding_y0(record):
    run = train_forum(record, iters=1, n_chunks=CHUNKS, hidden_size=HIDDEN, lr=0.0, progress=False)
    y = record.y[:, 0].reshape(CHUNKS, -1)
    expected = float(((y - y[:, :1]) ** 2).mean() / record.y.var(unbiased=False))
    assert run.persistence_nmse == pytest.approx(expected, rel=1e-5)


def test_standardised_designs_do_not_depend_on_the_voltage_scale():
    runs = []
    for std in (0.5, 50.0):
        rec = ol.from_dataframe(ol.circuits.linear_rlc(N, input_std=std, seed=0))
        runs.append(train_forum(rec, ForumDesign(standardize=True), iters=1, n_chunks=CHUNKS, progress=False).history)
    assert runs[0]["nmse"].iloc[0] == pytest.approx(runs[1]["nmse"].iloc[0], rel=1e-4)


def test_bad_arguments_are_named(record):
    with pytest.raises(ValueError, match="equal chunks"):
        train_forum(record, n_chunks=30, progress=False)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train_forum(record, optimizer="lbfgs", progress=False)
    two_inputs = ol.from_dataframe(ol.circuits.linear_rlc(N, seed=0).assign(in2=0.0), input=["in", "in2"])
    with pytest.raises(ValueError, match=r"one input and one output column, got inputs \['in', 'in2'\]"):
        train_forum(two_inputs, n_chunks=CHUNKS, progress=False)
    with pytest.raises(ValueError, match="unknown output"):
        ol.ForumRNNField(4, output="integral")


@pytest.fixture(scope="module")
def short():
    return ol.from_dataframe(ol.circuits.linear_rlc(60, input_std=2.0, seed=0))


@pytest.mark.parametrize("readout", [False, True])
def test_free_run_of_one_chunk_is_the_training_pass(short, readout):
    """With the whole record as one chunk, the free run and the training pass solve the same problem."""
    design = ForumDesign(decay=True, readout=readout, interpolate=True)
    run = train_forum(short, design, iters=1, n_chunks=6, hidden_size=HIDDEN, seed=0, progress=False)
    one_chunk = forum_pass(run.field, short, design, n_chunks=1)
    free = free_run(run.field, short, design, chunk=60)
    assert free.shape == (60, 1)
    torch.testing.assert_close(free[:, 0], torch.tensor(one_chunk.y_pred.to_numpy()), rtol=1e-5, atol=1e-6)


def test_free_run_carries_the_state_and_uses_no_measurement_after_the_first(short):
    run = train_forum(short, ForumDesign(decay=True), iters=1, n_chunks=6, hidden_size=HIDDEN, progress=False)
    free = run.simulate(short)
    changed = ol.Record(short.t, short.u, short.y * 0 + short.y[:1], source="y held at y[0]")
    torch.testing.assert_close(run.simulate(changed), free)  # only y[0] is read
    assert not torch.allclose(free[:, 0], torch.tensor(forum_pass(run.field, short, run.design, n_chunks=6).y_pred.to_numpy()))


def test_free_run_of_a_standardised_design_is_in_the_records_units():
    rec = ol.from_dataframe(ol.circuits.linear_rlc(60, input_std=2.0, seed=0))
    scaled = ol.Record(rec.t, rec.u * 10, rec.y * 10, source="volts x 10")
    design = ForumDesign(decay=True, readout=True, standardize=True)
    runs = [train_forum(r, design, iters=1, n_chunks=6, progress=False) for r in (rec, scaled)]
    torch.testing.assert_close(runs[1].simulate(scaled), 10 * runs[0].simulate(rec), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="training record's stats"):
        free_run(runs[0].field, rec, design)
