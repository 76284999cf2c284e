"""Sequence models that simulate an output from an input: the ODE-RNN and a discrete GRU baseline.

Both share one interface, so the same trainers and :func:`~odernn_lite.train.simulate` drive both:

* ``initial_state(u_past, y_past, gaps)`` — the state at the start of a window, from the ``n``
  samples before it (the *encoder*; Beintema et al. 2023 use the same idea for CT subspace
  encoders). With ``encoder_window=0`` the state starts at zero.
* ``rollout(t, u, h0)`` — outputs at the window's time stamps from its input alone (free run).

Models work in *model units*: values standardised with the training record's statistics and time
measured in ``time_scale`` seconds (the training record's median sample period), see
:meth:`SequenceModel.set_scaling`. :meth:`SequenceModel.to_model_units` converts a raw record.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .data import Record, Stats
from .fields import FIELDS, Field
from .inputs import Interpolation
from .solve import solve

__all__ = ["SequenceModel", "ODEModel", "GRUModel", "Encoder", "build_model", "MODELS"]


class Encoder(nn.Module):
    """Initial state from the past: ``h0 = MLP([u_past, y_past, gaps])``.

    Args:
        window: number ``n`` of past samples.
        input_size, output_size: channels of ``u`` and ``y``.
        state_size: size of the state it produces.
        hidden: width of the hidden layer.

    Inputs are ``u_past (batch, n, input_size)``, ``y_past (batch, n, output_size)`` and
    ``gaps (batch, n)``: the time from each past sample to the window start (so that irregular
    sampling is seen). Output ``(batch, state_size)``.
    """

    def __init__(self, window: int, input_size: int, output_size: int, state_size: int, *, hidden: int = 64):
        super().__init__()
        self.window = window
        features = window * (input_size + output_size + 1)
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, state_size))

    def forward(self, u_past, y_past, gaps):
        x = torch.cat([u_past.flatten(1), y_past.flatten(1), gaps.to(u_past.dtype)], dim=1)
        return self.net(x)


class SequenceModel(nn.Module):
    """Base class: scaling, the encoder, and the configuration needed to rebuild the model."""

    def __init__(self, state_size: int, input_size: int, output_size: int, *, encoder_window: int, encoder_hidden: int):
        super().__init__()
        self.state_size, self.input_size, self.output_size = state_size, input_size, output_size
        self.encoder_window = encoder_window
        self.encoder = (
            Encoder(encoder_window, input_size, output_size, state_size, hidden=encoder_hidden) if encoder_window else None
        )
        self.register_buffer("u_mean", torch.zeros(input_size))
        self.register_buffer("u_std", torch.ones(input_size))
        self.register_buffer("y_mean", torch.zeros(output_size))
        self.register_buffer("y_std", torch.ones(output_size))
        self.register_buffer("time_scale", torch.ones((), dtype=torch.float64))

    # --- units ------------------------------------------------------------------------------------
    @property
    def stats(self) -> Stats:
        return Stats(self.u_mean, self.u_std, self.y_mean, self.y_std)

    def set_scaling(self, record: Record, *, time_scale: float | None = None) -> SequenceModel:
        """Take the standardisation and the time unit (default: the median sample period) from
        ``record``, a raw training record in seconds. Returns the model."""
        stats = record.stats()
        for name in ("u_mean", "u_std", "y_mean", "y_std"):
            getattr(self, name).copy_(getattr(stats, name))
        self.time_scale.fill_(record.dt_median * record.time_scale if time_scale is None else time_scale)
        return self

    def to_model_units(self, record: Record) -> Record:
        """A raw record (time in ``record.time_scale`` seconds) in model units."""
        seconds_per_unit = float(self.time_scale) / record.time_scale
        return record.standardized(self.stats).in_sample_units(seconds_per_unit)

    # --- the two pieces a trainer calls ----------------------------------------------------------
    def initial_state(self, u_past: torch.Tensor, y_past: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """State at a window's start from the ``encoder_window`` samples before it (see
        :class:`Encoder`); zeros without an encoder. Shapes ``(batch, n, ·)`` → ``(batch, state)``."""
        if self.encoder is None:
            return u_past.new_zeros(u_past.shape[0], self.state_size)
        return self.encoder(u_past, y_past, gaps)

    def rollout(self, t: torch.Tensor, u: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Free-run a window.

        Args:
            t: time stamps ``(batch, L)``, float64, each row starting at 0.
            u: input at those stamps ``(batch, L, input_size)``.
            h0: state at ``t[:, 0]``, ``(batch, state_size)``.

        Returns:
            ``(y, h, nfe)``: outputs ``(batch, L, output_size)``, states ``(batch, L, state_size)``
            and the number of vector-field evaluations (0 for discrete models).
        """
        raise NotImplementedError

    def config(self) -> dict:
        """Everything :func:`build_model` needs to rebuild this model (without the weights)."""
        return dict(self._config)


class ODEModel(SequenceModel):
    """ODE-RNN for input→output systems: ``dh/dt = f(h, u(t))``, ``y = readout(h)``, ``h(t_0)`` from
    the encoder. The input between samples comes from :class:`~odernn_lite.inputs.Interpolation`.

    Args:
        field: name of a field in :data:`~odernn_lite.fields.FIELDS` (``neural-ss``, ``linear``,
            ``ctrnn``, ``gruode``).
        state_size: size of ``h``.
        input_size, output_size: channels of ``u`` and ``y``.
        encoder_window: past samples seen by the encoder (0: start from ``h = 0``).
        encoder_hidden: width of the encoder.
        interp: interpolation kind of the input.
        method, step_size, rtol, atol, adjoint: passed to :func:`~odernn_lite.solve.solve`.
            The default, ``rk4`` with steps of at most one sample period of the training record
            (``step_size=1.0`` in model units), is accurate for fields whose time constants are
            several sample periods long, and its cost is fixed. Records sampled more coarsely or
            with gaps are still solved in steps of one training sample period, so the solver stays
            as accurate and as stable as in training (chapter 9); ``step_size=None`` takes one step
            per gap between samples instead.
        field_kwargs: extra keyword arguments of the field (e.g. ``hidden`` for ``neural-ss``).
    """

    def __init__(
        self,
        field: str = "neural-ss",
        state_size: int = 8,
        input_size: int = 1,
        output_size: int = 1,
        *,
        encoder_window: int = 10,
        encoder_hidden: int = 64,
        interp: str = "linear",
        method: str = "rk4",
        step_size: float | None = 1.0,
        rtol: float = 1e-4,
        atol: float = 1e-6,
        adjoint: bool = False,
        field_kwargs: dict | None = None,
    ):
        super().__init__(state_size, input_size, output_size, encoder_window=encoder_window, encoder_hidden=encoder_hidden)
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r}; valid fields are {list(FIELDS)}")
        self._config = dict(
            kind="ode", field=field, state_size=state_size, input_size=input_size, output_size=output_size,
            encoder_window=encoder_window, encoder_hidden=encoder_hidden, interp=interp, method=method,
            step_size=step_size, rtol=rtol, atol=atol, adjoint=adjoint, field_kwargs=dict(field_kwargs or {}),
        )  # fmt: skip
        self.field: Field = FIELDS[field](state_size, input_size, output_size, **(field_kwargs or {}))
        self.interp = interp
        self.solver = dict(method=method, step_size=step_size, rtol=rtol, atol=atol, adjoint=adjoint)

    def rollout(self, t, u, h0, *, t_out=None):
        """See :meth:`SequenceModel.rollout`; ``t_out`` (``(batch, m)``, rows starting at 0) reports
        the outputs at other times than the input stamps, e.g. between samples."""
        self.field.set_input(Interpolation(t, u, kind=self.interp))
        sol = solve(self.field, h0, t if t_out is None else t_out, **self.solver)
        return self.field.readout(sol.states), sol.states, sol.nfe


class GRUModel(SequenceModel):
    """Discrete-time baseline: a GRU stepped once per sample, ``h_{k+1} = GRUCell(u_k, h_k)``,
    ``y_k = C h_k + d``. It ignores the time stamps, which is the point of comparing it with the
    ODE-RNN when the sampling changes."""

    def __init__(self, state_size: int = 32, input_size: int = 1, output_size: int = 1, *, encoder_window: int = 10, encoder_hidden: int = 64):
        super().__init__(state_size, input_size, output_size, encoder_window=encoder_window, encoder_hidden=encoder_hidden)
        self._config = dict(
            kind="gru", state_size=state_size, input_size=input_size, output_size=output_size,
            encoder_window=encoder_window, encoder_hidden=encoder_hidden,
        )  # fmt: skip
        self.cell = nn.GRUCell(input_size, state_size)
        self.output = nn.Linear(state_size, output_size)

    def rollout(self, t, u, h0):
        states = [h0]
        for k in range(u.shape[1] - 1):
            states.append(self.cell(u[:, k], states[-1]))
        h = torch.stack(states, dim=1)
        return self.output(h), h, 0


MODELS = {"ode": ODEModel, "gru": GRUModel}


def build_model(config: dict) -> SequenceModel:
    """Rebuild a model from :meth:`SequenceModel.config` (weights not included)."""
    config = copy.deepcopy(config)
    kind = config.pop("kind")
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; valid kinds are {list(MODELS)}")
    return MODELS[kind](**config)
