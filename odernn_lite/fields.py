"""Vector fields ``dh/dt = f(t, h)`` driven by an input ``u(t)``, in the form torchdiffeq expects.

Every field is an ``nn.Module`` whose ``forward(t, state)`` returns the time derivative of
``state``. The input enters through :meth:`Field.set_input`, which takes a callable ``u(t)``
(usually an :class:`~odernn_lite.inputs.Interpolation`) or a tensor held constant. A readout maps the
state to the output, ``y = readout(h)``.

=====================  =======================================================  ==========================
field                  equation                                                 source
=====================  =======================================================  ==========================
``ForumRNNField``      ``dy/dt = Linear(h'),  dh/dt = h'``, ``h' = RNNCell(u, h)``   the forum post (a bug)
``CTRNNField``         ``dh/dt = (−h + tanh(W h + U u + b)) / τ``                 Funahashi & Nakamura 1993
``GRUODEField``        ``dh/dt = (1 − z) ⊙ (g − h)``                              De Brouwer et al. 2019
``NeuralStateSpace``   ``dx/dt = A x + B u + MLP(x, u)``, ``y = C x``             Forgione & Piga 2021
``LinearStateSpace``   ``dx/dt = A x + B u``, ``y = C x``                         (the linear baseline)
=====================  =======================================================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["Field", "ForumRNNField", "CTRNNField", "GRUODEField", "NeuralStateSpace", "LinearStateSpace", "FIELDS"]


class Field(nn.Module):
    """Base class: an input-driven vector field with a readout.

    Attributes:
        state_size: size of ``h``; states have shape ``(batch, state_size)``.
        input_size: channels of ``u``.
        output_size: channels of ``y``.
    """

    state_size: int
    input_size: int
    output_size: int

    def set_input(self, u: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor) -> Field:
        """Set the input the field sees: a callable ``u(t) -> (batch, input_size)``, or a
        tensor ``(batch, input_size)`` held constant in time. Returns the field itself."""
        # Stored outside the module registry so that the input is not part of the state_dict.
        self.__dict__["_u"] = u
        return self

    def input_at(self, t: torch.Tensor) -> torch.Tensor:
        """``u(t)``, shape ``(batch, input_size)``."""
        u = self.__dict__.get("_u")
        if u is None:
            raise RuntimeError(f"{type(self).__name__}: no input set; call set_input(u) before solving")
        return u if isinstance(u, torch.Tensor) else u(t)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """``y = readout(h)``: ``(..., state_size) -> (..., output_size)``."""
        return self.output(h)


class ForumRNNField(Field):
    """The vector field as posted on the forum: an ``nn.RNN`` step used as a time derivative.

    The state is the tuple ``(y, h)`` with the posted shapes ``y: (batch, 1, 1)`` and
    ``h: (1, batch, hidden)`` (``nn.RNN``'s ``(num_layers, batch, hidden)``), and

    .. math:: h' = \\tanh(W_{ih} u + b_{ih} + W_{hh} h + b_{hh}), \\quad
              \\frac{dy}{dt} = W_o h' + b_o, \\quad \\frac{dh}{dt} = h'.

    The RNN's *new state* is used as a *rate*: nothing pulls ``h`` back, so ``h`` drifts at a speed
    up to 1 per time unit, and ``y`` is the time integral of a readout. On the forum ``u`` was the
    first sample of each chunk, held for the whole solve; pass a tensor to :meth:`set_input` for that.

    Two keyword-only switches turn the fixes of chapter 3 on (the defaults are the post):

    Args:
        hidden_size: size of ``h``.
        input_size: channels of ``u``.
        output_size: channels of ``y`` (1 for the posted ``"rate"`` output).
        decay: ``dh/dt = h' − h`` instead of ``h'``: every unit relaxes towards the RNN's output
            with unit time constant, so ``h`` stays in ``(−1, 1)`` (a continuous-time RNN).
        output: ``"rate"`` (posted: ``dy/dt = W_o h' + b_o`` with the tuple state ``(y, h)``) or
            ``"readout"`` (``y = W_o h + b_o``; the state is ``h`` alone, any shape ending in
            ``hidden``, e.g. ``(batch, hidden)`` or the posted ``(1, batch, hidden)``).
    """

    def __init__(self, hidden_size: int = 10, input_size: int = 1, output_size: int = 1, *, decay: bool = False,
                 output: str = "rate"):  # fmt: skip
        super().__init__()
        if output not in ("rate", "readout"):
            raise ValueError(f"unknown output {output!r}; valid outputs are ['rate', 'readout']")
        if output == "rate" and output_size != 1:
            raise ValueError(f"the posted rate output integrates one output channel, got output_size={output_size}")
        self.state_size, self.input_size, self.output_size = hidden_size, input_size, output_size
        self.decay, self.output_kind = decay, output
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.dense = nn.Linear(hidden_size, output_size)

    def get_new_observation(self, x0: torch.Tensor) -> None:
        """The forum's name for holding the input ``x0`` (shape ``(batch, 1, input_size)``) constant."""
        self.set_input(x0.reshape(x0.shape[0], -1))

    def activation(self, t, h: torch.Tensor) -> torch.Tensor:
        """The RNN's output ``h' = tanh(W_ih u(t) + b_ih + W_hh h + b_hh)``, shaped like ``h``."""
        h3 = h.reshape(1, -1, self.state_size)
        x = self.input_at(t).reshape(h3.shape[1], 1, self.input_size)
        return self.rnn(x, h3)[1].reshape(h.shape)

    def forward(self, t, state):
        h = state if self.output_kind == "readout" else state[1]
        hn = self.activation(t, h)
        dh = hn - h if self.decay else hn
        if self.output_kind == "readout":
            return dh
        return self.dense(hn.reshape(-1, 1, self.state_size)), dh

    def readout(self, state):
        return self.dense(state) if self.output_kind == "readout" else state[0]


class CTRNNField(Field):
    """Continuous-time RNN (leaky integrator).

    .. math:: \\frac{dh}{dt} = \\frac{-h + \\tanh(W h + U u(t) + b)}{\\tau}, \\qquad y = C h + d

    The ``−h`` term makes every unit decay towards its input with time constant ``τ``, so ``h``
    stays in ``(−1, 1)``. Funahashi & Nakamura (1993); Beer (1995).

    Args:
        hidden_size: size of ``h``.
        input_size: channels of ``u``.
        output_size: channels of ``y``.
        tau: time constant, in the time unit of the solve (e.g. sample periods).
    """

    def __init__(self, hidden_size: int, input_size: int = 1, output_size: int = 1, *, tau: float = 1.0):
        super().__init__()
        self.state_size, self.input_size, self.output_size = hidden_size, input_size, output_size
        self.tau = float(tau)
        self.W = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U = nn.Linear(input_size, hidden_size)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, t, h):
        return (-h + torch.tanh(self.W(h) + self.U(self.input_at(t)))) / self.tau


class GRUODEField(Field):
    """GRU-ODE: the continuous-time limit of a GRU (De Brouwer et al. 2019), driven by ``u(t)``.

    .. math::
        r = \\sigma(W_r u + U_r h + b_r),\\quad z = \\sigma(W_z u + U_z h + b_z),\\quad
        g = \\tanh(W_g u + U_g (r \\odot h) + b_g),\\quad \\frac{dh}{dt} = (1 - z) \\odot (g - h)

    ``h`` relaxes towards the candidate ``g`` at rate ``1 − z ∈ (0, 1)``, so it stays in ``[−1, 1]``.
    """

    def __init__(self, hidden_size: int, input_size: int = 1, output_size: int = 1):
        super().__init__()
        self.state_size, self.input_size, self.output_size = hidden_size, input_size, output_size
        self.gates = nn.Linear(input_size + hidden_size, 2 * hidden_size)
        self.candidate_u = nn.Linear(input_size, hidden_size)
        self.candidate_h = nn.Linear(hidden_size, hidden_size, bias=False)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, t, h):
        u = self.input_at(t)
        r, z = torch.sigmoid(self.gates(torch.cat([u, h], dim=-1))).chunk(2, dim=-1)
        g = torch.tanh(self.candidate_u(u) + self.candidate_h(r * h))
        return (1 - z) * (g - h)


class NeuralStateSpace(Field):
    """Neural state-space model (Forgione & Piga 2021), a linear part plus a neural correction.

    .. math:: \\frac{dx}{dt} = A x + B u(t) + \\mathrm{MLP}([x, u(t)]), \\qquad y = C x + d

    The MLP's last layer starts near zero (``mlp_init_std``), so training starts from the linear
    model ``A = −a_init·I`` (stable, slow) and the correction grows only as the data ask for it.

    Args:
        state_size: size of ``x``.
        input_size: channels of ``u``.
        output_size: channels of ``y``.
        hidden: width of the MLP's hidden layer; 0 gives a purely linear model.
        a_init: initial decay rate on the diagonal of ``A``, per time unit of the solve.
        mlp_init_std: standard deviation of the MLP's last layer at initialisation.
    """

    def __init__(
        self,
        state_size: int,
        input_size: int = 1,
        output_size: int = 1,
        *,
        hidden: int = 64,
        a_init: float = 0.1,
        mlp_init_std: float = 1e-3,
    ):
        super().__init__()
        self.state_size, self.input_size, self.output_size = state_size, input_size, output_size
        self.A = nn.Parameter(-a_init * torch.eye(state_size))
        self.B = nn.Linear(input_size, state_size, bias=False)
        self.output = nn.Linear(state_size, output_size)
        if hidden:
            self.mlp = nn.Sequential(nn.Linear(state_size + input_size, hidden), nn.Tanh(), nn.Linear(hidden, state_size))
            nn.init.normal_(self.mlp[-1].weight, std=mlp_init_std)
            nn.init.zeros_(self.mlp[-1].bias)
        else:
            self.mlp = None

    def forward(self, t, x):
        u = self.input_at(t)
        dx = x @ self.A.T + self.B(u)
        if self.mlp is not None:
            dx = dx + self.mlp(torch.cat([x, u], dim=-1))
        return dx


class LinearStateSpace(NeuralStateSpace):
    """``dx/dt = A x + B u(t)``, ``y = C x + d``: :class:`NeuralStateSpace` without the MLP."""

    def __init__(self, state_size: int, input_size: int = 1, output_size: int = 1, *, a_init: float = 0.1):
        super().__init__(state_size, input_size, output_size, hidden=0, a_init=a_init)


def _forum_readout(state_size: int, input_size: int = 1, output_size: int = 1, **kwargs) -> ForumRNNField:
    """The posted field with its output read from the state, so that it fits :class:`ODEModel`."""
    return ForumRNNField(state_size, input_size, output_size, output="readout", **kwargs)


#: Fields by name, as :class:`~odernn_lite.models.ODEModel` takes them (the command line offers all
#: but ``forum``, the posted ``dh/dt = h'`` with a readout ``y = C h + d``, kept for comparisons).
FIELDS = {
    "forum": _forum_readout,
    "neural-ss": NeuralStateSpace,
    "linear": LinearStateSpace,
    "ctrnn": CTRNNField,
    "gruode": GRUODEField,
}
