"""The cumulative ablation of chapter 7: from the forum design to the final model, one fix at a time.

:data:`STEPS` lists the fixes in the order the book introduces them. Step ``k`` trains the design
with fixes ``1..k`` on, from the same seed and for the same number of updates, and scores it by
free-running a held-out record from its input alone. The first six steps run the forum's own loop
(:func:`odernn_lite.forum.train_forum`, ``dopri5``, one update per chunk); from step seven on the
same field, and then better ones, are trained by the library's trainers.

    table, models = run_ablation(train, test, updates=800)

``benchmarks/ablation.py`` runs it at the book's full budget and saves the table and the final model.
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from .data import Record
from .forum import ForumDesign, train_forum
from .metrics import fit, rmse
from .models import ODEModel
from .train import MultipleShootingTrainer, TBPTTTrainer, simulate

__all__ = ["STEPS", "run_ablation"]

#: ``(name, chapter, what changes)`` for each cumulative step, in order.
STEPS = [
    ("posted (patched to run)", 2, "dh/dt = RNN(u, h), dy/dt = W h', held input, µs, volts, no zero_grad"),
    ("+ zero_grad", 3, "each update uses its own chunk's gradient"),
    ("+ decay: dh/dt = h' - h", 3, "the state relaxes instead of drifting into saturation"),
    ("+ readout y = C h + d", 4, "the output is read from the state, no measured y0 per chunk"),
    ("+ interpolated input", 4, "u(t) linear between samples instead of the chunk's first sample"),
    ("+ units: standardised, time in sample periods", 5, "rates of order one per time unit"),
    ("+ RK4, one step per sample (TBPTTTrainer)", 6, "fixed-step solver instead of dopri5 at rtol 1e-7"),
    ("+ neural state-space field", 4, "dx/dt = A x + B u + MLP(x, u), stable linear start"),
    ("+ multiple shooting with an encoder (windows of 10)", 5, "64 windows per update, initial state from the past"),
    ("+ windows of 50 samples", 5, "the loss asks for 50-sample free runs"),
    ("+ lr 1e-2, clipping, cosine annealing (final model)", 5, "larger steps early, small steps at the end"),
]


@dataclasses.dataclass(frozen=True)
class _Budget:
    updates: int
    chunk: int
    hidden: int
    state: int
    batch: int
    seed: int


def _forum_step(k: int, train: Record, b: _Budget):
    design = ForumDesign(
        zero_grad=k >= 1, decay=k >= 2, readout=k >= 3, interpolate=k >= 4,
        time_scale=1 / (train.dt_median * train.time_scale) if k >= 5 else 1e6, standardize=k >= 5,
    )  # fmt: skip
    n_chunks = len(train) // b.chunk
    passes = max(1, round(b.updates / n_chunks))
    run = train_forum(train[: n_chunks * b.chunk], design, iters=passes, n_chunks=n_chunks, hidden_size=b.hidden,
                      seed=b.seed, progress=False)  # fmt: skip
    return run, run.simulate, float(run.history.nmse.iloc[-1]), passes * n_chunks, int(run.history.nfe.sum())


def _trainer_step(k: int, train: Record, b: _Budget):
    torch.manual_seed(b.seed)
    if k == 6:
        model = ODEModel("forum", b.hidden, encoder_window=0, field_kwargs={"decay": True}, interp="linear")
    else:
        model = ODEModel("neural-ss", b.state, encoder_window=0 if k == 7 else 10)
    model.set_scaling(train).to(train.t.device)
    if k <= 7:
        trainer = TBPTTTrainer(model, chunk=b.chunk, k1=1, lr=1e-3, seed=b.seed, progress=False)
    else:
        options = dict(lr=1e-2, clip=10.0, anneal=0.05) if k >= 10 else dict(lr=1e-3)
        trainer = MultipleShootingTrainer(model, window=10 if k == 8 else 50, batch_size=b.batch, seed=b.seed,
                                          progress=False, **options)  # fmt: skip
    history = trainer.fit(train, iters=b.updates)
    loss = float(history.loss.tail(max(1, len(history) // 10)).mean())  # standardised units: an nmse
    return trainer, lambda rec: simulate(model, rec).y_pred, loss, len(history), int(history.nfe.sum())


def run_ablation(
    train: Record,
    test: Record,
    *,
    updates: int = 800,
    chunk: int = 10,
    hidden: int = 10,
    state: int = 8,
    batch: int = 64,
    seed: int = 0,
    steps: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Train and score the cumulative steps of :data:`STEPS`.

    Args:
        train: raw training record (one input, one output).
        test: held-out raw record, free-run from its input alone.
        updates: optimiser updates per step (the forum loop makes one per chunk, so it runs
            ``updates / (len(train) / chunk)`` passes, at least one).
        chunk: samples per forum / TBPTT chunk.
        hidden: hidden size of the forum field.
        state: state size of the neural state space.
        batch: windows per multiple-shooting update.
        seed: seeds every step's weights (and window draws).
        steps: run only the first ``steps`` steps (default all).
        progress: show a progress bar over the steps.

    Returns:
        ``(table, models)``. ``table`` has one row per step: ``step``, ``fix``, ``chapter``,
        ``updates``, ``train_nmse`` (the training loss in the units trained on, divided by the output
        variance: over the last pass for the forum loop, the last tenth of the updates for the
        trainers), ``nfe`` (forward evaluations of training), ``seconds`` (training wall
        time), ``val_fit`` (free-run FIT % on ``test`` from sample 10 on, the encoder window of the
        last steps, for every step), ``val_rmse`` (V) and ``delta_fit`` (this step's share: its
        FIT minus the previous step's). ``models`` maps each step name to ``(trained object,
        simulated test output (n, 1))``.
    """
    b = _Budget(updates, chunk, hidden, state, batch, seed)
    rows, models = [], {}
    names = STEPS[: len(STEPS) if steps is None else steps]
    for k, (name, chapter, what) in enumerate(tqdm(names, desc="ablation", disable=not progress)):
        start = time.perf_counter()
        trained, sim, loss, n_updates, nfe = (_forum_step if k <= 5 else _trainer_step)(k, train, b)
        seconds = time.perf_counter() - start
        y_hat = sim(test)
        y, p = test.y[10:, 0], y_hat[10:, 0]
        rows.append({"step": k, "fix": name, "chapter": chapter, "updates": n_updates, "train_nmse": loss, "nfe": nfe,
                     "seconds": seconds, "val_fit": fit(y, p), "val_rmse": rmse(y, p)})  # fmt: skip
        models[name] = (trained, y_hat)
    table = pd.DataFrame(rows)
    table["delta_fit"] = table.val_fit.diff()
    return table, models
