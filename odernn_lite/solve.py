"""One call to integrate a vector field: a thin wrapper over torchdiffeq's ``odeint``.

What it adds to ``torchdiffeq.odeint``:

* counts the vector-field evaluations (NFE) of each solve, forward and, after ``backward()``, backward;
* keeps time exact: torchdiffeq hands the field ``t`` cast to the state's dtype (float32), which
  cannot resolve microsecond steps far from zero, so the solve runs on ``t − t[0]`` and the field
  sees ``t[0] + (t − t[0])`` rebuilt in float64;
* per-window time stamps ``t`` of shape ``(batch, m)`` (irregular sampling), solved once on the union
  of the stamps and gathered back;
* an error that says what went wrong and what to try when an adaptive solver's step underflows
  or runs past its step budget.

=================  ==========  ===============================================================
method             step size   notes
=================  ==========  ===============================================================
``euler``          fixed       1st order
``midpoint``       fixed       2nd order
``rk4``            fixed       4th order (3/8 rule)
``dopri5``         adaptive    5(4) Dormand–Prince, torchdiffeq's default
``dopri8``         adaptive    8(7) Dormand–Prince
``bosh3``          adaptive    3(2) Bogacki–Shampine
``adaptive_heun``  adaptive    2(1)
=================  ==========  ===============================================================

Fixed-step methods take ``step_size`` as the *largest* step: each gap between consecutive output
times is cut into the fewest equal steps no longer than ``step_size``, so outputs are solver points
(never interpolated) and a long gap between samples is crossed in short steps. Without it they take
one step per gap. Adaptive methods take ``rtol``/``atol``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

__all__ = ["solve", "Solution", "SolverError", "METHODS"]

METHODS = {
    "euler": "fixed",
    "midpoint": "fixed",
    "rk4": "fixed",
    "dopri5": "adaptive",
    "dopri8": "adaptive",
    "bosh3": "adaptive",
    "adaptive_heun": "adaptive",
}


class SolverError(RuntimeError):
    """An adaptive solver could not reach the end of the interval."""


class _Counted(nn.Module):
    """The field seen by torchdiffeq: counts calls and restores float64 time."""

    def __init__(self, field: nn.Module, t0: torch.Tensor):
        super().__init__()
        self.field = field
        self.t0 = t0
        self.calls = 0

    def forward(self, t, state):
        self.calls += 1
        return self.field(self.t0 + t.to(torch.float64), state)


@dataclasses.dataclass
class Solution:
    """The result of :func:`solve`.

    Attributes:
        t: output times, as passed in.
        states: for a tensor state ``(batch, n)``, shape ``(batch, len(t), n)`` (``t`` 1-D) or
            ``(batch, m, n)`` (``t`` of shape ``(batch, m)``). For a tuple state (the forum field),
            the tuple of time-major tensors torchdiffeq returns, each ``(len(t), *shape)``.
        nfe: vector-field evaluations of the forward solve.
    """

    t: torch.Tensor
    states: torch.Tensor | tuple[torch.Tensor, ...]
    nfe: int
    _counter: _Counted = dataclasses.field(repr=False, default=None)

    @property
    def nfe_backward(self) -> int:
        """Evaluations made since the forward solve: by ``backward()`` through the adjoint solve
        (0 for direct backpropagation, which reuses the stored graph instead)."""
        return self._counter.calls - self.nfe


def _merged_grid(t: torch.Tensor, rtol: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted union of the rows of ``t`` (``(batch, m)``) with times closer than ``rtol`` times the
    span merged (rows that are equal up to rounding, e.g. ``t[k:k+L] − t[k]`` of a regular record,
    must give one grid, not ``batch`` interleaved copies). Returns ``(grid, index)`` with
    ``grid[index] ≈ t``."""
    grid = torch.unique(t, sorted=True)
    tol = rtol * max(float(grid[-1] - grid[0]), 1.0)
    grid = grid[torch.cat([torch.ones(1, dtype=torch.bool, device=t.device), torch.diff(grid) > tol])]
    index = (torch.searchsorted(grid, t.contiguous(), right=True) - 1).clamp(min=0)
    return grid, index


def _max_step_grid(step_size: float):
    """A torchdiffeq ``grid_constructor``: each gap between consecutive output times cut into the
    fewest equal steps no longer than ``step_size``. The grid depends only on the gaps, so a record
    solved in chunks takes the same steps as solved whole."""

    def construct(func, y0, t):
        gaps = torch.diff(t)
        n = torch.ceil(gaps.abs() / step_size - 1e-6).clamp(min=1).long()  # steps per gap (t may decrease: adjoint)
        gap_of = torch.repeat_interleave(torch.arange(len(gaps), device=t.device), n)
        k = torch.arange(1, int(n.sum()) + 1, device=t.device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        grid = t[gap_of] + gaps[gap_of] * (k / n[gap_of]).to(t.dtype)
        grid[torch.cumsum(n, 0) - 1] = t[1:]  # the output times themselves, exactly
        return torch.cat([t[:1], grid])

    return construct


def solve(
    field: nn.Module,
    h0: torch.Tensor | tuple[torch.Tensor, ...],
    t: torch.Tensor,
    *,
    method: str = "dopri5",
    rtol: float = 1e-4,
    atol: float = 1e-6,
    step_size: float | None = None,
    adjoint: bool = False,
    max_steps: int = 20_000,
) -> Solution:
    """Integrate ``dh/dt = field(t, h)`` from ``h(t[0]) = h0`` and return ``h`` at the times ``t``.

    Args:
        field: a module with ``forward(t, h)`` returning ``dh/dt`` (its input already set).
        h0: initial state, shape ``(batch, n)``, or a tuple of tensors.
        t: output times, strictly increasing: shape ``(m,)``, or ``(batch, m)`` with one row per
            batch element, all starting at the same time (e.g. each window's time minus its start).
        method: a key of :data:`METHODS`.
        rtol, atol: tolerances of adaptive methods.
        step_size: largest step of fixed-step methods (each gap between output times is cut into
            equal steps no longer than this); default: one step per gap between output times.
        adjoint: backpropagate by solving the adjoint ODE (memory independent of the number of
            steps) instead of through the solver's operations.
        max_steps: step budget of adaptive methods.

    Returns:
        :class:`Solution`.

    Raises:
        ValueError: unknown method, or ``t`` not increasing.
        SolverError: the step size underflowed or the step budget ran out.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {list(METHODS)}")
    t = torch.as_tensor(t)
    per_row = t.dim() == 2
    if per_row:
        if not bool((t[:, :1] == t[:1, :1]).all()):
            raise ValueError("with per-row times t of shape (batch, m), every row must start at the same time")
        grid, inverse = _merged_grid(t)
    else:
        grid = t
    if grid.dim() != 1 or len(grid) < 1 or (len(grid) > 1 and not bool((torch.diff(grid) > 0).all())):
        raise ValueError("t must be a strictly increasing 1-D tensor (or (batch, m) with increasing rows)")
    grid64 = grid.to(torch.float64)
    t0 = grid64[0]
    counted = _Counted(field, t0)
    options = {}
    if METHODS[method] == "fixed":
        if step_size is not None:
            if not step_size > 0:
                raise ValueError(f"step_size must be positive, got {step_size}")
            options["grid_constructor"] = _max_step_grid(float(step_size))
    else:
        options["max_num_steps"] = max_steps
    kwargs = dict(rtol=rtol, atol=atol, method=method, options=options)
    try:
        if adjoint:
            out = odeint_adjoint(counted, h0, grid64 - t0, adjoint_params=tuple(field.parameters()), **kwargs)
        else:
            out = odeint(counted, h0, grid64 - t0, **kwargs)
    except AssertionError as e:
        msg = str(e)
        if "underflow" in msg or "max_num_steps" in msg:
            what = "its step size underflowed" if "underflow" in msg else f"it ran past max_steps={max_steps}"
            raise SolverError(
                f"{method} stopped after {counted.calls} evaluations: {what} ({msg}). The field is stiff or "
                "its state is blowing up. Try: time in sample periods (Record.in_sample_units), standardised "
                "data, a smaller learning rate or gradient clipping, a fixed-step method (method='rk4'), or a "
                "larger max_steps."
            ) from None
        raise
    nfe = counted.calls
    if isinstance(out, tuple):
        return Solution(t=t, states=out, nfe=nfe, _counter=counted)
    states = out.movedim(0, 1)  # (batch, len(grid), n)
    if per_row:
        states = torch.gather(states, 1, inverse[:, :, None].expand(-1, -1, states.shape[-1]))
    return Solution(t=t, states=states, nfe=nfe, _counter=counted)
