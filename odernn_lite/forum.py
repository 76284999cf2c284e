"""The forum's training loop, with a switch for each of its suspected causes of the plateau.

:func:`train_forum` runs the posted design (chapter 2 reproduces the post's own code; this is the
same loop written once, so that the diagnosis and the ablation can turn one thing at a time on):

* the record is cut into ``n_chunks`` consecutive chunks (the post's ``reshape(nbatchs, -1)``);
* chunk ``j`` is solved with ``odeint`` from the measured output ``y0`` at its first sample and the
  hidden state carried (detached) from chunk ``j − 1``, starting from zeros;
* the loss is the MSE over the chunk's samples; ``loss.backward()`` and ``optimizer.step()`` follow
  every chunk (``k = 1``), and the printed loss is the sum over the chunks of one pass (``tot_loss``);
* ``optimizer.zero_grad()`` is never called.

Every default of :class:`ForumDesign` is the post's choice; each field turns one fix on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
import math
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from .data import Record, Stats
from .diagnose import saturated_fraction
from .fields import ForumRNNField
from .inputs import Interpolation
from .solve import solve
from .train import grad_norms

__all__ = ["ForumDesign", "ForumRun", "train_forum", "forum_pass", "free_run"]


@dataclasses.dataclass(frozen=True)
class ForumDesign:
    """The forum design and its fixes; the defaults are the post.

    Attributes:
        zero_grad: call ``optimizer.zero_grad()`` before every update (the post never does, so each
            step uses the sum of all gradients computed so far).
        decay: ``dh/dt = h' − h`` (a leaky, continuous-time RNN) instead of ``dh/dt = h'``.
        readout: ``y = C h + d`` read from the carried state, instead of ``dy/dt = C h' + d``
            integrated from the measured ``y0`` of each chunk.
        interpolate: the input ``u(t)`` linearly interpolated between the chunk's samples, instead
            of the chunk's first sample held for the whole solve.
        time_scale: time units per second: ``1e6`` (µs) as posted; ``1 / dt`` is sample periods.
        standardize: train on standardised ``u`` and ``y`` instead of volts.
    """

    zero_grad: bool = False
    decay: bool = False
    readout: bool = False
    interpolate: bool = False
    time_scale: float = 1e6
    standardize: bool = False


@dataclasses.dataclass
class ForumRun:
    """What :func:`train_forum` returns.

    Attributes:
        history: one row per pass over the record (the post's ``itr``): ``itr``, ``loss`` (the
            post's ``tot_loss``, in the units trained on), ``nmse`` (mean over chunks of the MSE
            divided by the output variance, comparable across designs), ``grad_norm`` (mean norm of
            the gradient each step used), ``nfe`` (vector-field evaluations of the pass), ``h_max``
            (largest ``|h|`` at a chunk end), ``saturated`` (fraction of ``tanh`` units above 0.99
            at the chunk ends), ``seconds`` (cumulative).
        field: the trained :class:`~odernn_lite.fields.ForumRNNField`.
        design: the design trained.
        persistence_nmse: the ``nmse`` of predicting ``y0`` for the whole chunk (what a model that
            learns nothing scores when it is handed ``y0``).
        stats: the training record's standardisation (``None`` unless ``design.standardize``).
        chunk: samples per chunk.
        solver: the solver options trained with.
    """

    history: pd.DataFrame
    field: ForumRNNField
    design: ForumDesign
    persistence_nmse: float
    stats: Stats | None = None
    chunk: int = 10
    solver: dict = dataclasses.field(default_factory=dict)

    def simulate(self, record: Record) -> torch.Tensor:
        """Free-run the trained design over another record; see :func:`free_run`."""
        return free_run(self.field, record, self.design, chunk=self.chunk, stats=self.stats, **self.solver)


def _design_units(record: Record, design: ForumDesign, stats: Stats | None = None):
    """``t (n,)`` in the design's time unit and ``u, y (n, 1)`` in the units it trains on
    (standardised with ``stats``, default the record's own, when ``design.standardize``)."""
    if record.u.shape[1] != 1 or record.y.shape[1] != 1:
        raise ValueError(f"{record.source}: the forum design takes one input and one output column, got "
                         f"inputs {list(record.input_names)} and outputs {list(record.output_names)}")  # fmt: skip
    if design.time_scale <= 0:
        raise ValueError(f"time_scale must be positive (time units per second), got {design.time_scale}")
    rec = record.standardized(stats) if design.standardize else record
    return rec.t * (rec.time_scale * design.time_scale), rec.u, rec.y


def _chunks(record: Record, n_chunks: int, design: ForumDesign):
    """``t (n_chunks, L)`` in the design's time unit, ``u, y (n_chunks, L, 1)`` in the units
    trained on, and the variance of that ``y`` (the normaliser of ``nmse``)."""
    n = len(record)
    t, u, y = _design_units(record, design)
    if n % n_chunks:
        raise ValueError(f"{record.source}: {n} samples do not split into {n_chunks} equal chunks "
                         f"(the post's reshape needs a multiple; {n % n_chunks} samples would be left over)")  # fmt: skip
    y_var = float(y.var(unbiased=False))
    return t.reshape(n_chunks, -1), u.reshape(n_chunks, -1, 1), y.reshape(n_chunks, -1, 1), y_var


def _solve_chunk(field: ForumRNNField, design: ForumDesign, t, u, y0, h, **solver):
    """One chunk as the design solves it: input ``u (L, 1)`` held at its first sample or
    interpolated, from the output ``y0`` (one value; unused by a readout design) and the state ``h``
    (``(1, 1, hidden)``). Returns predictions ``(L,)``, states ``(L, hidden)``, NFE."""
    if design.interpolate:
        field.set_input(Interpolation(t, u[None], kind="linear"))
    else:
        field.set_input(u[None, 0])
    hidden = field.state_size
    if design.readout:
        sol = solve(field, h.reshape(1, hidden), t, **solver)
        hs = sol.states[0]  # (L, hidden)
        pred = field.readout(hs)
    else:
        sol = solve(field, (y0.view(1, 1, 1), h), t, **solver)
        pred, hs = sol.states  # (L, 1, 1, 1), (L, 1, 1, hidden)
    return pred.reshape(-1), hs.reshape(-1, hidden), sol.nfe


@torch.no_grad()
def forum_pass(field: ForumRNNField, record: Record, design: ForumDesign = ForumDesign(), *, n_chunks: int = 100,
               method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9) -> pd.DataFrame:  # fmt: skip
    """One pass of the design over ``record`` without training, as :func:`train_forum` makes it.

    Returns:
        DataFrame with one row per sample: ``t`` (the design's time unit), ``u``, ``y``,
        ``y_pred`` (in the units trained on), ``h_norm`` (``‖h‖``), ``h_max`` (``max |h_i|``),
        ``saturated`` (fraction of ``tanh`` units above 0.99 there), ``tanh_slope`` (mean of
        ``tanh' = 1 − h'²`` over the units: the factor every gradient through them is multiplied by),
        ``chunk``.
    """
    t, u, y, _ = _chunks(record, n_chunks, design)
    h = torch.zeros(1, 1, field.state_size, device=t.device)
    rows = []
    for j in range(n_chunks):
        pred, hs, _ = _solve_chunk(field, design, t[j], u[j], y[j, 0], h, method=method, rtol=rtol, atol=atol)
        act = torch.stack([field.activation(tk, hk[None]) for tk, hk in zip(t[j], hs)])
        rows.append(pd.DataFrame({"t": t[j].cpu().numpy(), "u": u[j, :, 0].cpu().numpy(), "y": y[j, :, 0].cpu().numpy(),
                                  "y_pred": pred.cpu().numpy(), "h_norm": hs.norm(dim=-1).cpu().numpy(),
                                  "h_max": hs.abs().amax(dim=-1).cpu().numpy(),
                                  "saturated": saturated_fraction(act.reshape(len(hs), -1)).cpu().numpy(),
                                  "tanh_slope": (1 - act.reshape(len(hs), -1) ** 2).mean(dim=-1).cpu().numpy(), "chunk": j}))  # fmt: skip
        h = hs[-1].reshape(1, 1, -1)
    return pd.concat(rows, ignore_index=True)


def train_forum(
    record: Record,
    design: ForumDesign = ForumDesign(),
    *,
    iters: int = 10,
    n_chunks: int = 100,
    hidden_size: int = 10,
    lr: float = 1e-3,
    optimizer: str = "adam",
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> ForumRun:
    """Train the forum design (with the fixes ``design`` turns on) for ``iters`` passes.

    Args:
        record: a raw record with one input and one output, ``len(record)`` a multiple of ``n_chunks``.
        design: which fixes are on.
        iters: passes over the record (the post's ``niters``); each makes ``n_chunks`` updates.
        n_chunks: the post's ``nbatchs``.
        hidden_size: the post's ``hidden_size``.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (the post does not say which it used).
        method, rtol, atol: the solver; the post used ``odeint``'s defaults, ``dopri5`` with
            ``rtol = 1e-7``, ``atol = 1e-9``.
        seed: seeds the weights (through a local generator state; the global one is restored).
        max_seconds: stop after the pass during which this many seconds have passed.
        progress: show a progress bar.
        callback: called after every update with the update's number (from 1) and its chunk's
            loss (the MSE in the units trained on), e.g. to plot the loss live.

    Returns:
        :class:`ForumRun`.
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers are ['adam', 'sgd']")
    device = record.t.device
    t, u, y, y_var = _chunks(record, n_chunks, design)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        field = ForumRNNField(hidden_size, decay=design.decay, output="readout" if design.readout else "rate").to(device)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(field.parameters(), lr=lr)
    persistence = float(((y - y[:, :1]) ** 2).mean(dim=(1, 2)).mean()) / y_var
    rows, start = [], time.perf_counter()
    for itr in tqdm(range(1, iters + 1), disable=not progress, desc="forum loop", leave=False):
        tot_loss, nmse, norms, nfe, h_max, sat = 0.0, 0.0, [], 0, 0.0, []
        h = torch.zeros(1, 1, hidden_size, device=device)
        for j in range(n_chunks):
            if design.zero_grad:
                opt.zero_grad()
            pred, hs, calls = _solve_chunk(field, design, t[j], u[j], y[j, 0], h.detach(), method=method, rtol=rtol, atol=atol)
            loss = torch.mean((pred - y[j, :, 0]) ** 2)
            loss.backward()
            norms.append(math.sqrt(sum(v * v for v in grad_norms(field).values())))
            opt.step()
            tot_loss += float(loss.detach())
            if callback is not None:
                callback((itr - 1) * n_chunks + j + 1, float(loss.detach()))
            nmse += float(loss.detach()) / y_var / n_chunks
            nfe += calls
            h = hs[-1].reshape(1, 1, hidden_size)
            with torch.no_grad():
                h_max = max(h_max, float(h.abs().max()))
                sat.append(float(saturated_fraction(field.activation(t[j, -1], h))))
        rows.append({"itr": itr, "loss": tot_loss, "nmse": nmse, "grad_norm": sum(norms) / len(norms), "nfe": nfe,
                     "h_max": h_max, "saturated": sum(sat) / len(sat),
                     "seconds": time.perf_counter() - start})  # fmt: skip
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    return ForumRun(history=pd.DataFrame(rows), field=field, design=design, persistence_nmse=persistence,
                    stats=record.stats() if design.standardize else None, chunk=len(record) // n_chunks,
                    solver=dict(method=method, rtol=rtol, atol=atol))  # fmt: skip


@torch.no_grad()
def free_run(field: ForumRNNField, record: Record, design: ForumDesign = ForumDesign(), *, chunk: int = 10,
             stats: Stats | None = None, method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9) -> torch.Tensor:  # fmt: skip
    """Simulate ``record`` from its input alone with a field trained by :func:`train_forum`.

    The record is cut into chunks of ``chunk`` samples and the input is handled as in training
    (each chunk's first sample held, or interpolated over the chunk), but nothing is reset: the
    state, and with the posted ``dy/dt`` output also ``y``, is carried from chunk to chunk, and each
    solve runs on to the next chunk's first sample (training skips that last sample period). The
    posted output starts from the measured ``y`` of the first sample, the only measurement used;
    a readout design starts from ``h = 0``.

    Args:
        field: the trained field.
        record: a raw record with one input and one output (any length ≥ 2).
        design: the design it was trained with.
        chunk: samples per chunk, as in training.
        stats: the *training* record's standardisation when ``design.standardize``.
        method, rtol, atol: the solver, as in training.

    Returns:
        The simulated output ``(len(record), 1)`` in the record's units.
    """
    if design.standardize and stats is None:
        raise ValueError("a standardised design needs the training record's stats (ForumRun.stats)")
    t, u, y = _design_units(record, design, stats)
    n = len(t)
    h, y_run = torch.zeros(1, 1, field.state_size, device=t.device), y[0]
    preds = []
    for s in range(0, n - 1, chunk):
        e = min(s + chunk, n - 1)  # solve t[s..e]; e is the next chunk's first sample
        p, hs, _ = _solve_chunk(field, design, t[s : e + 1], u[s : e + 1], y_run, h, method=method, rtol=rtol, atol=atol)
        h, y_run = hs[-1].reshape(1, 1, -1), p[-1]
        preds.append(p if not preds else p[1:])
    out = torch.cat(preds)[:, None]
    return stats.unscale_y(out) if design.standardize else out
