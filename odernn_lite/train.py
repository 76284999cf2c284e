"""Training and free-run simulation.

Two trainers share one loop (:class:`Trainer`): ``zero_grad`` before every update, optional
gradient-norm clipping, a NaN/inf guard that restores the last good weights, a time budget, a
``tqdm`` progress bar, an optional TensorBoard-style logger, a history DataFrame, and checkpoints
from which a resumed run continues exactly.

* :class:`TBPTTTrainer` — truncated backpropagation through time over consecutive chunks of one
  long record, carrying the state from chunk to chunk (Williams & Peng 1990): every ``k1`` chunks,
  backpropagate through the last ``k2``.
* :class:`MultipleShootingTrainer` — many windows drawn at random from the record, each started
  from the encoder's estimate of its state, solved together as one batched ODE (truncated
  simulation error; Forgione & Piga 2021, Beintema et al. 2023).

:func:`simulate` free-runs a trained model over a record of any length from its input alone.
"""

from __future__ import annotations

import copy
import math
import pickle
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import Record
from .models import SequenceModel, build_model
from .solve import SolverError

__all__ = [
    "Trainer",
    "TBPTTTrainer",
    "MultipleShootingTrainer",
    "TrainingDiverged",
    "OPTIMIZERS",
    "grad_norms",
    "simulate",
    "Simulation",
    "save_checkpoint",
    "load_checkpoint",
]

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN/inf, or the solver gave up; the weights were restored."""


def grad_norms(model: nn.Module) -> dict[str, float]:
    """Euclidean norm of the gradient of every named parameter (0.0 where there is none)."""
    return {name: (float(p.grad.norm()) if p.grad is not None else 0.0) for name, p in model.named_parameters()}


def _build_optimizer(optimizer, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers are {list(OPTIMIZERS)}")
    return OPTIMIZERS[optimizer](model.parameters(), lr=lr)


class Trainer:
    """The update loop shared by the trainers; subclasses provide :meth:`_loss`.

    Args:
        model: a :class:`~odernn_lite.models.SequenceModel` (its scaling already set).
        optimizer: an optimizer instance, or a name in :data:`OPTIMIZERS`.
        lr: learning rate when ``optimizer`` is a name.
        clip: clip the total gradient norm to this value (None: no clipping).
        seed: seeds the trainer's own generator (window sampling); no global RNG is touched.
        logger: anything with ``add_scalar(tag, value, step)``, e.g. a TensorBoard ``SummaryWriter``.
        progress: show a progress bar.
        anneal: if given, each :meth:`fit` call lowers the learning rate along a cosine from its
            value at the start to ``anneal`` times that value at the end of the call's budget: over
            ``iters`` updates when ``iters`` is given (so the schedule, like the run, is the same on
            every machine; a ``max_seconds`` that runs out first stops it part-way), else over
            ``max_seconds`` of wall time.
    """

    def __init__(self, model: SequenceModel, *, optimizer="adam", lr: float = 1e-3, clip: float | None = None,
                 seed: int = 0, logger=None, progress: bool = True, anneal: float | None = None):  # fmt: skip
        self.model = model
        self.optimizer = _build_optimizer(optimizer, model, lr)
        self.clip = clip
        self.anneal = anneal
        self.logger = logger
        self.progress = progress
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.rows: list[dict] = []
        self.last_h0: torch.Tensor | None = None  # leaf initial state of the last update, for ∂L/∂h0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def history(self) -> pd.DataFrame:
        """One row per update: step, loss, grad_norm, nfe, seconds (cumulative), grad/<parameter>, …"""
        return pd.DataFrame(self.rows)

    def _loss(self, data) -> tuple[torch.Tensor, int, dict]:
        """Return (loss, forward NFE, extra history columns) of the next update."""
        raise NotImplementedError

    def _prepare(self, record: Record):
        raise NotImplementedError

    def fit(self, record: Record, *, iters: int | None = None, max_seconds: float | None = None) -> pd.DataFrame:
        """Run updates on ``record`` (raw units) until ``iters`` more updates are done or
        ``max_seconds`` have passed, whichever comes first. Returns :attr:`history`."""
        if iters is None and max_seconds is None:
            raise ValueError("give iters, max_seconds or both")
        data = self._prepare(record)
        seconds0 = self.rows[-1]["seconds"] if self.rows else 0.0
        start = time.perf_counter()
        bar = tqdm(total=iters, disable=not self.progress, desc=type(self).__name__, leave=False)
        done = 0
        base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        while (iters is None or done < iters) and (max_seconds is None or time.perf_counter() - start < max_seconds):
            if self.anneal is not None:
                progress = done / iters if iters is not None else (time.perf_counter() - start) / max_seconds
                factor = self.anneal + (1 - self.anneal) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
                for group, base in zip(self.optimizer.param_groups, base_lrs):
                    group["lr"] = base * factor
            good = copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict(), self._state()))
            self.optimizer.zero_grad(set_to_none=True)
            try:
                loss, nfe, extra = self._loss(data)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"the loss became {float(loss.detach())}")
                loss.backward()
                norms = grad_norms(self.model)
                total = math.sqrt(sum(v * v for v in norms.values()))
                if not math.isfinite(total):
                    raise TrainingDiverged(f"the gradient norm became {total}")
            except (TrainingDiverged, SolverError) as e:
                self._restore(good)
                raise TrainingDiverged(
                    f"update {self.step + 1}: {e}. The weights were restored to update {self.step}. "
                    "Try a smaller learning rate, gradient clipping (clip=...), or standardised data."
                ) from e
            if self.clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.optimizer.step()
            self.step += 1
            done += 1
            row = {"step": self.step, "loss": float(loss.detach()), "grad_norm": total, "nfe": nfe,
                   "lr": self.optimizer.param_groups[0]["lr"],
                   "seconds": seconds0 + time.perf_counter() - start, **extra}  # fmt: skip
            row.update({f"grad/{k}": v for k, v in norms.items()})
            self.rows.append(row)
            if self.logger is not None:
                for tag in ("loss", "grad_norm", "nfe"):
                    self.logger.add_scalar(tag, row[tag], self.step)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4g}")
        bar.close()
        if self.anneal is not None:  # the next fit call starts from the original learning rate
            for group, base in zip(self.optimizer.param_groups, base_lrs):
                group["lr"] = base
        return self.history

    # --- state for checkpoints -------------------------------------------------------------------
    def _state(self) -> dict:
        """Trainer-specific state beyond the optimizer (overridden by subclasses)."""
        return {}

    def _load_state(self, state: dict) -> None:
        pass

    def _restore(self, good) -> None:
        model_state, optimizer_state, own = good
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        self._load_state(own)

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "step": self.step,
            "rows": list(self.rows),
            "own": self._state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step = state["step"]
        self.rows = list(state["rows"])
        self._load_state(state["own"])

    def save(self, path: str | Path, **extra) -> None:
        """Write a checkpoint with the model and this trainer's state (see :func:`save_checkpoint`)."""
        save_checkpoint(path, self.model, trainer=self, **extra)

    def load(self, path: str | Path) -> None:
        """Restore model weights and trainer state from a checkpoint written by :meth:`save`."""
        ckpt = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(ckpt["model_state"])
        if ckpt.get("trainer") is None:
            raise ValueError(f"{path}: the checkpoint holds no trainer state (saved without a trainer)")
        self.load_state_dict(ckpt["trainer"])


def _mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mean((y_hat - y) ** 2)


class MultipleShootingTrainer(Trainer):
    """Truncated simulation error over random windows, solved in parallel.

    Each update draws ``batch_size`` windows of ``encoder_window + window`` consecutive samples.
    The encoder turns the first ``encoder_window`` samples (past ``u``, ``y``) into the state at the
    window's start; the model then free-runs ``window`` samples from the input alone, and the loss
    is the mean squared error of those outputs (in standardised units).

    Args:
        model, optimizer, lr, clip, seed, logger, progress: see :class:`Trainer`.
        window: simulated samples per window, or a curriculum ``[(from_step, window), ...]``
            (sorted by step) that lengthens the windows as training goes on.
        batch_size: windows per update.
    """

    def __init__(self, model: SequenceModel, *, window: int | Sequence[tuple[int, int]] = 50, batch_size: int = 32, **kwargs):
        super().__init__(model, **kwargs)
        self.curriculum = [(0, window)] if isinstance(window, int) else sorted((int(s), int(w)) for s, w in window)
        self.batch_size = batch_size

    def window_at(self, step: int) -> int:
        """Window length used at update ``step``."""
        return [w for s, w in self.curriculum if s <= step][-1]

    def _prepare(self, record):
        rec = self.model.to_model_units(record)
        longest = self.model.encoder_window + max(w for _, w in self.curriculum)
        if len(rec) < longest:
            raise ValueError(f"{record.source}: {len(rec)} rows are fewer than one window of {longest} samples "
                             f"(encoder_window {self.model.encoder_window} + window)")  # fmt: skip
        return rec.t.to(self.device), rec.u.to(self.device), rec.y.to(self.device)

    def _loss(self, data):
        t, u, y = data
        n, L = self.model.encoder_window, self.window_at(self.step)
        starts = torch.randint(0, len(t) - (n + L) + 1, (self.batch_size,), generator=self.generator)
        idx = (starts[:, None] + torch.arange(n + L)).to(self.device)
        tw, uw, yw = t[idx], u[idx], y[idx]
        h0 = self.model.initial_state(uw[:, :n], yw[:, :n], tw[:, n : n + 1] - tw[:, :n])
        self.last_h0 = h0
        y_hat, _, nfe = self.model.rollout(tw[:, n:] - tw[:, n : n + 1], uw[:, n:], h0)
        return _mse(y_hat, yw[:, n:]), nfe, {"window": L}


class TBPTTTrainer(Trainer):
    """Truncated backpropagation through time over consecutive chunks of one record.

    The record (after the encoder's first ``encoder_window`` samples) is cut into chunks of
    ``chunk`` sample periods; chunk ``j`` spans samples ``[jL, (j+1)L]``, so it starts exactly where
    the previous one ended, and its loss is taken on its samples after the first. The state is
    carried from chunk to chunk. Every ``k1`` chunks the trainer makes one update whose loss is the
    mean over those ``k1`` chunks, backpropagated through the last ``k2 ≥ k1`` chunks: the state
    entering chunk ``e − k2`` is detached (a leaf that requires grad, see :attr:`last_h0`), so
    older chunks contribute nothing. The ``k2`` chunks are re-solved with the current weights
    rather than keeping graphs from before the last ``optimizer.step()`` (whose in-place weight
    update would invalidate them); with ``k1 = k2`` every chunk is solved once.

    Args:
        model, optimizer, lr, clip, seed, logger, progress: see :class:`Trainer`.
        chunk: samples per chunk.
        k1: chunks per update.
        k2: chunks backpropagated through (default ``k1``).
    """

    def __init__(self, model: SequenceModel, *, chunk: int = 10, k1: int = 1, k2: int | None = None, **kwargs):
        super().__init__(model, **kwargs)
        k2 = k1 if k2 is None else k2
        if not 1 <= k1 <= k2:
            raise ValueError(f"TBPTT needs 1 <= k1 <= k2, got k1={k1}, k2={k2}")
        self.chunk, self.k1, self.k2 = chunk, k1, k2
        self.next_chunk = 0  # first chunk of the next update
        self.epoch = 0
        self.carried: dict[int, torch.Tensor] = {}  # detached state entering chunk j

    def _prepare(self, record):
        rec = self.model.to_model_units(record)
        n, L = self.model.encoder_window, self.chunk
        n_chunks = (len(rec) - 1 - n) // L
        if n_chunks < 1:
            raise ValueError(f"{record.source}: {len(rec)} rows are fewer than the encoder window ({n}) plus one chunk ({L + 1})")
        return rec.t.to(self.device), rec.u.to(self.device), rec.y.to(self.device), n_chunks

    def _chunk(self, data, j):
        t, u, y, _ = data
        a = self.model.encoder_window + j * self.chunk
        sl = slice(a, a + self.chunk + 1)
        return (t[sl] - t[a])[None], u[sl][None], y[sl][None]

    def _loss(self, data):
        t, u, y, n_chunks = data
        n = self.model.encoder_window
        e = min(self.next_chunk + self.k1, n_chunks)
        first = max(self.next_chunk + self.k1 - self.k2, 0)
        if first == 0:  # the state comes from the encoder (or zeros), with its graph
            h = self.model.initial_state(u[None, :n], y[None, :n], (t[n] - t[:n])[None])
        else:
            h = self.carried[first].detach().requires_grad_(True)
        self.last_h0 = h
        losses, nfe = [], 0
        for j in range(first, e):
            tc, uc, yc = self._chunk(data, j)
            y_hat, hs, calls = self.model.rollout(tc, uc, h)
            nfe += calls
            h = hs[:, -1]
            self.carried[j + 1] = h.detach()
            if j >= self.next_chunk:
                losses.append(_mse(y_hat[:, 1:], yc[:, 1:]))
        for j in [k for k in self.carried if k < e + 1 - self.k2]:
            del self.carried[j]
        extra = {"epoch": self.epoch, "chunks": f"{self.next_chunk}-{e - 1}"}
        self.next_chunk = e
        if e == n_chunks:  # the end of the record: start again from the encoder
            self.next_chunk, self.epoch = 0, self.epoch + 1
            self.carried.clear()
        return torch.stack(losses).mean(), nfe, extra

    def _state(self):
        return {"next_chunk": self.next_chunk, "epoch": self.epoch, "carried": {k: v.clone() for k, v in self.carried.items()}}

    def _load_state(self, state):
        self.next_chunk, self.epoch = state["next_chunk"], state["epoch"]
        self.carried = {k: v.clone() for k, v in state["carried"].items()}


# --- simulation -------------------------------------------------------------------------------------
class Simulation:
    """A free-run simulation of a record.

    Attributes:
        t: time stamps of the record, ``(n,)`` float64, in the record's unit.
        y_pred: simulated output, ``(n, n_out)``, in the record's units; NaN on the first
            ``start`` samples, which only initialised the state.
        y_true: the measured output ``(n, n_out)``.
        start: index of the first simulated sample (the encoder window).
        query_t, query_y: outputs at the extra query times, if any were asked for.
    """

    def __init__(self, t, y_pred, y_true, start, query_t=None, query_y=None, names=("out",), time_name="T"):
        self.t, self.y_pred, self.y_true, self.start = t, y_pred, y_true, start
        self.query_t, self.query_y = query_t, query_y
        self.names, self.time_name = names, time_name

    def scores(self) -> dict[str, float]:
        """RMSE, NRMSE, FIT % and R² of the simulated part (samples ``start`` on), first channel."""
        from .metrics import fit, nrmse, r2, rmse

        y, p = self.y_true[self.start :, 0], self.y_pred[self.start :, 0]
        return {"rmse": rmse(y, p), "nrmse": nrmse(y, p), "fit": fit(y, p), "r2": r2(y, p)}

    def to_dataframe(self) -> pd.DataFrame:
        """Time column (in seconds, as the record holds it), ``<name>_pred`` and the measured ``<name>``."""
        cols = {self.time_name: self.t.numpy()}
        for j, name in enumerate(self.names):
            cols[f"{name}_pred"] = self.y_pred[:, j].numpy()
            cols[name] = self.y_true[:, j].numpy()
        return pd.DataFrame(cols)


@torch.no_grad()
def simulate(model: SequenceModel, record: Record, *, init_window: int | None = None, chunk: int = 1000,
             query_times: torch.Tensor | np.ndarray | None = None) -> Simulation:  # fmt: skip
    """Free-run ``model`` over ``record`` from its input alone.

    The first ``init_window`` samples (input and measured output) only set the initial state through
    the encoder; from there on the model sees the input only. The record is solved in chunks of
    ``chunk`` samples that share their boundary sample, carrying the state, without keeping a graph.

    Args:
        model: a trained model.
        record: a raw record (any length ≥ ``init_window + 2``, regular or irregular stamps).
        init_window: must equal ``model.encoder_window`` (default); 0 is allowed for models
            without an encoder.
        chunk: samples per solve.
        query_times: extra times (record's time unit) at which to report the output, each within
            the simulated span ``[t[init_window], t[-1]]``; ODE models only.

    Returns:
        :class:`Simulation`.
    """
    n = model.encoder_window if init_window is None else init_window
    if n != model.encoder_window:
        raise ValueError(f"init_window={n}, but the model's encoder takes exactly {model.encoder_window} samples")
    if len(record) < n + 2:
        raise ValueError(f"{record.source}: {len(record)} rows; simulation needs at least init_window + 2 = {n + 2}")
    device = next(model.parameters()).device
    rec = model.to_model_units(record)
    t, u, y = rec.t.to(device), rec.u.to(device), rec.y.to(device)
    scale = float(model.time_scale) / record.time_scale
    queries = None
    if query_times is not None:
        if not hasattr(model, "field"):
            raise ValueError("query_times need a continuous-time model; a discrete model has outputs at its samples only")
        queries = torch.sort(torch.as_tensor(query_times, dtype=torch.float64).flatten())[0].to(device) / scale
        if len(queries) and (queries[0] < t[n] or queries[-1] > t[-1]):
            raise ValueError(f"query times must lie in the simulated span [{float(t[n]) * scale}, {float(t[-1]) * scale}]")
    h = model.initial_state(u[None, :n], y[None, :n], (t[n] - t[:n])[None])
    y_pred = torch.full_like(y, float("nan"))
    query_out = []
    s = n
    while s < len(t) - 1:
        e = min(s + chunk, len(t) - 1)
        tc = t[s : e + 1] - t[s]
        if queries is not None:
            inside = queries[(queries >= t[s]) & ((queries < t[e]) | (e == len(t) - 1))] - t[s]
            grid, inverse = torch.unique(torch.cat([tc, inside]), sorted=True, return_inverse=True)
            y_grid, h_grid, _ = model.rollout(tc[None], u[None, s : e + 1], h, t_out=grid[None])
            y_chunk = y_grid[0, inverse[: len(tc)]]
            query_out.append(y_grid[0, inverse[len(tc) :]])
            h = h_grid[:, inverse[len(tc) - 1]]
        else:
            yc, hs, _ = model.rollout(tc[None], u[None, s : e + 1], h)
            y_chunk, h = yc[0], hs[:, -1]
        y_pred[s : e + 1] = y_chunk
        s = e
    stats = model.stats
    y_pred = stats.unscale_y(y_pred).cpu()
    query_y = stats.unscale_y(torch.cat(query_out)).cpu() if queries is not None else None
    return Simulation(
        t=record.t, y_pred=y_pred, y_true=record.y, start=n,
        query_t=(queries * scale).cpu() if queries is not None else None, query_y=query_y,
        names=record.output_names, time_name=record.time_name,
    )  # fmt: skip


# --- checkpoints ------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, model: SequenceModel, *, trainer: Trainer | None = None, **extra) -> None:
    """Save a self-contained checkpoint: the model's configuration and weights (scaling included),
    the trainer's state if given (optimizer, step, generator, history), and ``extra`` (e.g. the
    command-line options and the column names)."""
    torch.save(
        {"model_config": model.config(), "model_state": model.state_dict(),
         "trainer": trainer.state_dict() if trainer is not None else None, "extra": extra},
        path,
    )  # fmt: skip


def load_checkpoint(path: str | Path, *, map_location="cpu") -> tuple[SequenceModel, dict]:
    """Rebuild the model saved by :func:`save_checkpoint`. Returns ``(model, checkpoint dict)``."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
        model = build_model(ckpt["model_config"])
        model.load_state_dict(ckpt["model_state"])
    except FileNotFoundError:
        raise ValueError(f"{path}: checkpoint not found") from None
    except (KeyError, RuntimeError, EOFError, TypeError, ValueError, AttributeError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: not an odernn-lite checkpoint ({type(e).__name__}: {e})") from None
    return model, ckpt
