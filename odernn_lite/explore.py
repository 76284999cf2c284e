"""The explorer of chapter 10: one short training run from a handful of knobs, and widgets for them.

:class:`Settings` holds every knob (the forum's fixes, the time unit, the solver and its tolerance,
the chunk length, TBPTT's ``k1``/``k2``, the learning rate, the budget); :func:`run` trains one model
with them and free-runs a held-out record; :func:`explorer` puts the knobs on ipywidgets sliders and
toggles, with a button that calls :func:`run` and plots the loss live::

    result = run(Settings(updates=300), train, test)
    ui = explorer(train, test)   # in a notebook: display(ui.widget)

Two training loops are offered, because they expose different knobs:

* ``"forum"``: the forum's own loop (:func:`odernn_lite.forum.train_forum`): one update per chunk,
  the hidden state carried between chunks, every fix of chapters 3-5 switchable;
* ``"tbptt"``: :class:`~odernn_lite.train.TBPTTTrainer` on the same field (``dh/dt = h'`` or
  ``h' − h`` with a readout ``y = C h + d``), on standardised data, with ``k1`` chunks per update
  backpropagated through ``k2`` chunks. ``zero_grad``, the readout and standardisation are always
  on there; ``interpolate`` off means a zero-order hold of each sample (not the chunk's first one).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import torch

from .data import Record
from .forum import ForumDesign, train_forum
from .metrics import fit
from .models import ODEModel
from .solve import METHODS, SolverError
from .train import TBPTTTrainer, TrainingDiverged, simulate

__all__ = ["Settings", "Result", "TIME_UNITS", "run", "explorer", "smoothed", "updates_per_pass"]

#: Time units the explorer offers: name → seconds per unit (``None``: one sample period).
TIME_UNITS = {"sample periods": None, "µs": 1e-6, "ms": 1e-3, "s": 1.0}

#: Samples at the start of the held-out record not scored (as in chapter 7).
SKIP = 10

def smoothed(losses: list[float], n: int) -> tuple[list[int], list[float]]:
    """The running mean of the last ``n`` losses (of all so far for the first ``n``), at every update.

    One update's loss is one chunk's, and it jumps by orders of magnitude along the record: some
    stretches of the input are harder than others. With ``n`` the updates of one pass over the
    record, every point averages the same stretches, so the curve shows learning, not position.
    """
    out, total = [], 0.0
    for i, loss in enumerate(losses):
        total += loss - (losses[i - n] if i >= n else 0.0)
        out.append(total / min(i + 1, n))
    return list(range(1, len(losses) + 1)), out


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob of one explorer run; the defaults train a working model in seconds.

    Attributes:
        loop: ``"forum"`` (the forum's loop) or ``"tbptt"`` (:class:`~odernn_lite.train.TBPTTTrainer`).
        zero_grad, decay, readout, interpolate, standardize: the forum's fixes (see
            :class:`~odernn_lite.forum.ForumDesign`); the ``tbptt`` loop uses ``decay`` and
            ``interpolate`` only (the others are always on there).
        time_unit: a key of :data:`TIME_UNITS`; the posted unit is ``"µs"``.
        hidden_size: size of the hidden state ``h``.
        method: a solver of :data:`~odernn_lite.solve.METHODS`; fixed-step ones take one step per sample.
        rtol: relative tolerance of adaptive solvers (``atol = rtol / 100``).
        chunk: samples per chunk (the TBPTT window).
        k1, k2: ``tbptt`` only: chunks per update, and chunks backpropagated through (``k2 ≥ k1``).
        lr: Adam's learning rate.
        updates: optimiser updates (the forum loop runs whole passes: at least this many updates).
        seed: seeds the weights.
    """

    loop: str = "forum"
    zero_grad: bool = True
    decay: bool = True
    readout: bool = True
    interpolate: bool = True
    standardize: bool = True
    time_unit: str = "sample periods"
    hidden_size: int = 10
    method: str = "rk4"
    rtol: float = 1e-4
    chunk: int = 10
    k1: int = 1
    k2: int = 1
    lr: float = 1e-2
    updates: int = 300
    seed: int = 0

    def __post_init__(self):
        if self.loop not in ("forum", "tbptt"):
            raise ValueError(f"unknown loop {self.loop!r}; valid loops are ['forum', 'tbptt']")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"unknown time_unit {self.time_unit!r}; valid units are {list(TIME_UNITS)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid methods are {list(METHODS)}")
        if not 1 <= self.k1 <= self.k2:
            raise ValueError(f"TBPTT needs 1 <= k1 <= k2, got k1={self.k1}, k2={self.k2}")
        for name in ("hidden_size", "chunk", "updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def posted(cls, **changes) -> Settings:
        """The forum design as posted (every fix off, µs, ``dopri5`` at ``rtol = 1e-7``), with ``changes``."""
        base = dict(zero_grad=False, decay=False, readout=False, interpolate=False, standardize=False,
                    time_unit="µs", method="dopri5", rtol=1e-7, lr=1e-3)  # fmt: skip
        return cls(**{**base, **changes})


@dataclasses.dataclass
class Result:
    """What :func:`run` returns.

    Attributes:
        settings: the settings trained with.
        losses: the training loss of every update divided by the variance of the output it was
            trained on (an nmse: 1 is predicting the mean), ``(updates,)``.
        y_pred: the free run of the held-out record from its input alone, ``(n_test, 1)``, volts.
        fit: FIT % of that free run from sample :data:`SKIP` on.
        nfe: vector-field evaluations of training.
        seconds: training wall time.
        error: the message if training stopped early (diverged or the solver gave up), else ``None``.
    """

    settings: Settings
    losses: list[float]
    y_pred: torch.Tensor | None
    fit: float
    nfe: int
    seconds: float
    error: str | None = None


def updates_per_pass(settings: Settings, train: Record) -> int:
    """Updates in one pass over ``train``: one per chunk in the forum loop, one per ``k1`` chunks in TBPTT."""
    if settings.loop == "forum":
        return len(train) // settings.chunk
    return max(1, math.ceil(((len(train) - 1) // settings.chunk) / settings.k1))


def _seconds_per_unit(settings: Settings, train: Record) -> float:
    per_unit = TIME_UNITS[settings.time_unit]
    return train.dt_median * train.time_scale if per_unit is None else per_unit


def _run_forum(s: Settings, train: Record, test: Record, on_loss):
    design = ForumDesign(zero_grad=s.zero_grad, decay=s.decay, readout=s.readout, interpolate=s.interpolate,
                         standardize=s.standardize, time_scale=1 / _seconds_per_unit(s, train))  # fmt: skip
    n_chunks = len(train) // s.chunk
    y = train.y[: n_chunks * s.chunk]
    y_var = 1.0 if s.standardize else float(y.var(unbiased=False))  # standardised y has variance 1
    trained = train_forum(train[: n_chunks * s.chunk], design, iters=math.ceil(s.updates / n_chunks), n_chunks=n_chunks,
                          hidden_size=s.hidden_size, lr=s.lr, method=s.method, rtol=s.rtol, atol=s.rtol / 100,
                          seed=s.seed, progress=False, callback=lambda step, loss: on_loss(loss / y_var))  # fmt: skip
    return trained.simulate(test), int(trained.history.nfe.sum())


def _run_tbptt(s: Settings, train: Record, test: Record, on_loss, block: int = 20):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        model = ODEModel("forum", s.hidden_size, encoder_window=0, interp="linear" if s.interpolate else "zoh",
                         method=s.method, step_size=None, rtol=s.rtol, atol=s.rtol / 100,
                         field_kwargs={"decay": s.decay})  # fmt: skip
    model.set_scaling(train, time_scale=_seconds_per_unit(s, train)).to(train.t.device)
    trainer = TBPTTTrainer(model, chunk=s.chunk, k1=s.k1, k2=s.k2, lr=s.lr, seed=s.seed, progress=False)
    done = 0
    while done < s.updates:  # in blocks, so that the loss can be shown while training runs
        n = min(block, s.updates - done)
        rows = trainer.fit(train, iters=n).iloc[-n:]
        for loss in rows.loss:
            on_loss(float(loss))  # standardised units: the loss is an nmse
        done += n
    return simulate(model, test).y_pred, int(trainer.history.nfe.sum())


def run(settings: Settings, train: Record, test: Record, *, on_loss: Callable[[float], None] | None = None) -> Result:
    """Train one model with ``settings`` on ``train`` and free-run ``test`` from its input alone.

    Args:
        settings: the knobs.
        train: raw training record (one input, one output; the forum loop uses the first
            ``len(train) // chunk * chunk`` samples).
        test: raw held-out record (same sample period).
        on_loss: called with each update's loss (an nmse, see :attr:`Result.losses`) as it comes.

    Returns:
        :class:`Result`; a run that diverges or whose solver gives up returns with ``error`` set,
        the losses so far, and ``y_pred = None``, ``fit = nan``.
    """
    losses: list[float] = []

    def record_loss(loss: float) -> None:
        losses.append(loss)
        if on_loss is not None:
            on_loss(loss)

    start = time.perf_counter()
    try:
        y_pred, nfe = (_run_forum if settings.loop == "forum" else _run_tbptt)(settings, train, test, record_loss)
    except (TrainingDiverged, SolverError) as e:
        return Result(settings, losses, None, math.nan, 0, time.perf_counter() - start, error=str(e))
    seconds = time.perf_counter() - start
    if not torch.isfinite(y_pred).all():
        return Result(settings, losses, None, math.nan, nfe, seconds, error="the free run of the held-out record is not finite")
    return Result(settings, losses, y_pred, fit(test.y[SKIP:, 0], y_pred[SKIP:, 0]), nfe, seconds)


class Explorer:
    """The widgets of :func:`explorer`; ``widget`` is the box to display.

    Attributes:
        controls: the knob widgets by :class:`Settings` field name.
        button: the "train" button.
        status: a label with the last run's summary.
        plots: the output area of the live plots.
        last: the last :class:`Result` (``None`` before the first run).
        widget: the whole explorer.
    """

    def __init__(self, train: Record, test: Record, defaults: Settings = Settings(), *, redraw_every: int = 25):
        import ipywidgets as w

        self.train, self.test, self.redraw_every = train, test, redraw_every
        d = defaults
        toggle = lambda name, text: w.Checkbox(value=getattr(d, name), description=text, indent=False)  # noqa: E731
        self.controls = {
            "loop": w.ToggleButtons(options=[("forum loop", "forum"), ("TBPTT trainer", "tbptt")], value=d.loop,
                                    description="loop"),  # fmt: skip
            "zero_grad": toggle("zero_grad", "zero_grad each update"),
            "decay": toggle("decay", "decay: dh/dt = h' - h"),
            "readout": toggle("readout", "readout y = C h + d"),
            "interpolate": toggle("interpolate", "interpolated input"),
            "standardize": toggle("standardize", "standardised data"),
            "time_unit": w.Dropdown(options=list(TIME_UNITS), value=d.time_unit, description="time unit"),
            "hidden_size": w.IntSlider(value=d.hidden_size, min=2, max=64, description="hidden size"),
            "method": w.Dropdown(options=["rk4", "euler", "midpoint", "dopri5", "bosh3"], value=d.method, description="solver"),
            "rtol": w.FloatLogSlider(value=d.rtol, base=10, min=-8, max=-2, step=1, description="rtol", readout_format=".0e"),
            "chunk": w.IntSlider(value=d.chunk, min=2, max=100, description="chunk (samples)"),
            "k1": w.IntSlider(value=d.k1, min=1, max=10, description="k1"),
            "k2": w.IntSlider(value=d.k2, min=1, max=10, description="k2"),
            "lr": w.FloatLogSlider(value=d.lr, base=10, min=-4, max=-1, step=0.25, description="learning rate",
                                   readout_format=".1e"),  # fmt: skip
            "updates": w.IntSlider(value=d.updates, min=20, max=2000, step=20, description="updates"),
            "seed": w.IntText(value=d.seed, description="seed"),
        }
        for c in self.controls.values():
            c.style = {"description_width": "110px"}
        self.button = w.Button(description="train", button_style="primary", icon="play")
        self.status = w.HTML(value="Set the knobs and press <b>train</b>.")
        self.plots = w.Output()
        self.last: Result | None = None
        self.controls["loop"].observe(lambda _: self._enable(), names="value")
        self.controls["k1"].observe(lambda ch: self._keep_order("k2", max, ch.new), names="value")
        self.controls["k2"].observe(lambda ch: self._keep_order("k1", min, ch.new), names="value")
        self.button.on_click(lambda _: self.train_once())
        self._enable()
        c = self.controls
        group = lambda title, names: w.VBox([w.HTML(f"<b>{title}</b>"), *(c[k] for k in names)],  # noqa: E731
                                            layout=w.Layout(width="340px", margin="0 12px 8px 0"))  # fmt: skip
        for name in ("time_unit", "hidden_size", "method", "rtol", "chunk", "k1", "k2", "lr", "updates", "seed"):
            c[name].layout = w.Layout(width="320px")
        groups = w.HBox([group("forum fixes", ("zero_grad", "decay", "readout", "interpolate", "standardize")),
                         group("model and solver", ("time_unit", "hidden_size", "method", "rtol")),
                         group("training", ("chunk", "k1", "k2", "lr", "updates", "seed"))],
                        layout=w.Layout(flex_flow="row wrap"))  # fmt: skip; the groups wrap on narrow pages
        self.widget = w.VBox([c["loop"], groups, w.HBox([self.button, self.status]), self.plots])

    def _keep_order(self, other: str, pick, value: int) -> None:
        """Keep ``k1 ≤ k2`` when one slider moves past the other."""
        self.controls[other].value = pick(self.controls[other].value, value)

    def _enable(self) -> None:
        """Grey out the knobs the chosen loop does not use."""
        forum = self.controls["loop"].value == "forum"
        for name in ("zero_grad", "readout", "standardize"):
            self.controls[name].disabled = not forum
        for name in ("k1", "k2"):
            self.controls[name].disabled = forum

    def settings(self) -> Settings:
        """The :class:`Settings` the widgets show now."""
        return Settings(**{name: c.value for name, c in self.controls.items()})

    def _draw(self, settings: Settings, losses: list[float], result: Result | None = None) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig, (ax_loss, ax_sim) = plt.subplots(1, 2, figsize=(11, 3.4))
        if losses:
            n = updates_per_pass(settings, self.train)
            ax_loss.semilogy(range(1, len(losses) + 1), losses, lw=0.5, alpha=0.3, color="tab:blue", label="each update")
            ax_loss.semilogy(*smoothed(losses, n), lw=1.5, color="tab:blue", label=f"mean of the last {n} (one pass)")
            ax_loss.legend(loc="upper right", fontsize=8)
        ax_loss.set(xlabel="update", ylabel="training loss / output variance", title="training loss")
        t = (self.test.t - self.test.t[0]).cpu().numpy() * self.test.time_scale * 1e6
        ax_sim.plot(t, self.test.y[:, 0].cpu().numpy(), "k", lw=1, label="measured")
        if result is not None and result.y_pred is not None:
            ax_sim.plot(t, result.y_pred[:, 0].cpu().numpy(), "tab:orange", lw=1, label=f"free run, FIT {result.fit:.1f} %")
        ax_sim.set(xlabel="time [µs]", ylabel="output [V]", title="held-out record")
        ax_sim.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        with self.plots:
            self.plots.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    def train_once(self) -> Result:
        """Train with the current settings, plotting the loss every ``redraw_every`` updates; returns the result."""
        settings = self.settings()
        self.button.disabled = True
        self.status.value = "training…"
        losses: list[float] = []

        def on_loss(loss: float) -> None:
            losses.append(loss)
            if len(losses) % self.redraw_every == 0:
                self._draw(settings, losses)

        try:
            result = run(settings, self.train, self.test, on_loss=on_loss)
        finally:
            self.button.disabled = False
        self.last = result
        self._draw(settings, result.losses, result)
        if result.error is None:
            self.status.value = (f"FIT <b>{result.fit:.1f} %</b> on the held-out record; {len(result.losses)} updates, "
                                 f"{result.nfe:,} evaluations, {result.seconds:.1f} s")  # fmt: skip
        else:
            self.status.value = f"<b>stopped</b>: {result.error}"
        return result


def explorer(train: Record, test: Record, defaults: Settings = Settings(), *, redraw_every: int = 25) -> Explorer:
    """Widgets for every knob of :class:`Settings` and a button that trains and plots a run.

    Args:
        train, test: raw training and held-out records (one input, one output).
        defaults: the knobs' starting values.
        redraw_every: redraw the loss plot every this many updates while training.

    Returns:
        :class:`Explorer`; display its ``widget``. ``train_once()`` does what the button does, so a
        script (or a test) can drive it without a browser.
    """
    return Explorer(train, test, defaults, redraw_every=redraw_every)
