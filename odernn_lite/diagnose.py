"""Measurements for finding out why a model does not train: gradients, states, cost, stiffness.

Each function measures one thing and returns numbers (a DataFrame or tensors); the ``plot_*``
helpers draw them and return a matplotlib Figure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import torch
from torch import nn

from .solve import solve

__all__ = [
    "gradient_norms",
    "state_gradient_vs_horizon",
    "saturated_fraction",
    "state_magnitude",
    "nfe_per_unit_time",
    "jacobian_eigenvalues",
    "saved_tensor_bytes",
    "plot_history",
    "plot_gradient_vs_horizon",
    "plot_simulation",
    "plot_eigenvalues",
]


def gradient_norms(history: pd.DataFrame) -> pd.DataFrame:
    """The per-parameter gradient norms of a trainer's history: one column per parameter, indexed
    by update step."""
    cols = [c for c in history.columns if c.startswith("grad/")]
    return history.set_index("step")[cols].rename(columns=lambda c: c[len("grad/") :])


def state_gradient_vs_horizon(
    field: nn.Module,
    h0: torch.Tensor,
    horizons: Sequence[float],
    *,
    loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **solver,
) -> pd.DataFrame:
    """How strongly the state at ``t = 0`` still influences a loss at time ``T``: ``‖∂L/∂h0‖``.

    For each horizon ``T`` the field (its input already set) is solved from ``h0`` to ``T`` and
    ``L = loss(h(T))`` (default ``mean(h(T)²)``) is backpropagated to ``h0``. A norm that decays
    with ``T`` means vanishing gradients through time; a norm that stays put means it does not.

    Args:
        field: a vector field with its input set.
        h0: initial state, tensor ``(batch, n)`` or a tuple (the forum field); the gradient is taken
            with respect to the last tensor of a tuple (the hidden state).
        horizons: the times ``T`` (in the solve's time unit), each > 0.
        loss: function of the final state (same structure as ``h0``) returning a scalar.
        **solver: keyword arguments of :func:`~odernn_lite.solve.solve`.

    Returns:
        DataFrame with columns ``horizon``, ``grad_norm``, ``nfe`` (forward evaluations) and
        ``param_grad_norm`` (``‖∂L/∂θ‖`` over the field's parameters).
    """
    loss = loss or (lambda h: torch.mean((h[-1] if isinstance(h, tuple) else h) ** 2))
    rows = []
    for T in horizons:
        leaf = tuple(x.detach().clone().requires_grad_(True) for x in h0) if isinstance(h0, tuple) else h0.detach().clone().requires_grad_(True)
        field.zero_grad()
        sol = solve(field, leaf, torch.tensor([0.0, float(T)], dtype=torch.float64), **solver)
        final = tuple(s[-1] for s in sol.states) if isinstance(sol.states, tuple) else sol.states[:, -1]
        loss(final).backward()
        target = leaf[-1] if isinstance(leaf, tuple) else leaf
        params = [p.grad.flatten() for p in field.parameters() if p.grad is not None]
        rows.append({
            "horizon": float(T),
            "grad_norm": float(target.grad.norm()),
            "nfe": sol.nfe,
            "param_grad_norm": float(torch.cat(params).norm()) if params else 0.0,
        })  # fmt: skip
    return pd.DataFrame(rows)


def saturated_fraction(activations: torch.Tensor, *, threshold: float = 0.99) -> torch.Tensor:
    """Fraction of ``tanh`` units with ``|a| > threshold`` (where ``tanh' < 1 − threshold²``,
    so gradients through them are nearly cut), over the last dimension.

    Args:
        activations: ``tanh`` outputs, shape ``(..., units)``.
    Returns:
        shape ``(...)``.
    """
    return (activations.abs() > threshold).to(torch.float32).mean(dim=-1)


def state_magnitude(states: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of the state over its last dimension, e.g. ``(batch, time, n) → (batch, time)``."""
    return torch.linalg.vector_norm(states, dim=-1)


def nfe_per_unit_time(nfe: int, t: torch.Tensor) -> float:
    """Vector-field evaluations per unit of solved time: a cost that does not depend on the horizon
    and that grows when the dynamics get stiff or fast."""
    span = float(t.max() - t.min())
    return nfe / span if span > 0 else float("nan")


def jacobian_eigenvalues(field: nn.Module, states: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
    """Eigenvalues of the Jacobian ``∂f/∂h`` of the field along a trajectory.

    Eigenvalues with large negative real parts next to slow ones mean stiffness (explicit solvers
    need tiny steps); positive real parts mean locally unstable dynamics.

    Args:
        field: a vector field with its input set (batch 1 input: the Jacobian is taken per state).
        states: ``(time, n)`` states of one trajectory.
        t: ``(time,)`` times of the states (default zeros; matters only for time-varying inputs).

    Returns:
        complex tensor ``(time, n)``.
    """
    t = torch.zeros(len(states), dtype=torch.float64) if t is None else t
    eig = []
    for tk, hk in zip(t, states):
        J = torch.autograd.functional.jacobian(lambda h: field(tk, h[None])[0], hk.detach())
        eig.append(torch.linalg.eigvals(J))
    return torch.stack(eig)


@contextlib.contextmanager
def saved_tensor_bytes() -> Iterator[dict]:
    """Measure the memory autograd keeps for the backward pass of the code inside the block.

    Every tensor saved for backward (by an operation, or by ``ctx.save_for_backward`` in a custom
    function such as torchdiffeq's adjoint) is counted once per storage, so a weight saved by many
    operations counts once. This is the memory that direct backpropagation through a solver grows
    with the number of steps, measured on any device, CPU included.

    Yields:
        a dict whose ``"bytes"`` and ``"tensors"`` entries are filled in as the block runs.

    Example:
        >>> with saved_tensor_bytes() as saved:
        ...     loss = model(x).pow(2).mean()
        >>> saved["bytes"]
    """
    seen: set[tuple[int, int]] = set()
    box = {"bytes": 0, "tensors": 0}

    def pack(tensor):
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in seen:
            seen.add(key)
            box["bytes"] += storage.nbytes()
            box["tensors"] += 1
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield box


# --- plots --------------------------------------------------------------------------------------
def _figure(ncols: int = 1, width: float = 6.0, height: float = 3.2):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def plot_history(history: pd.DataFrame, *, columns: Sequence[str] = ("loss", "grad_norm")):
    """Training curves (log scale) of the given history columns against the update step."""
    fig, axes = _figure(len(columns), width=4.5)
    for ax, col in zip(axes, columns):
        ax.semilogy(history["step"], history[col])
        ax.set_xlabel("update")
        ax.set_title(col)
    fig.tight_layout()
    return fig


def plot_gradient_vs_horizon(table: pd.DataFrame):
    """``‖∂L/∂h0‖`` and NFE against the horizon, from :func:`state_gradient_vs_horizon`."""
    fig, (ax1, ax2) = _figure(2, width=4.5)
    ax1.loglog(table["horizon"], table["grad_norm"], "o-")
    ax1.set_xlabel("horizon T")
    ax1.set_title("‖∂L/∂h(0)‖")
    ax2.loglog(table["horizon"], table["nfe"], "o-")
    ax2.set_xlabel("horizon T")
    ax2.set_title("function evaluations")
    fig.tight_layout()
    return fig


def plot_simulation(simulation, *, channel: int = 0, title: str | None = None):
    """Measured vs simulated output of a :class:`~odernn_lite.train.Simulation`, and the error."""
    fig, (ax1, ax2) = _figure(2, width=5.5)
    t = simulation.t.numpy()
    ax1.plot(t, simulation.y_true[:, channel].numpy(), label="measured", lw=1)
    ax1.plot(t, simulation.y_pred[:, channel].numpy(), "--", label="simulated", lw=1)
    ax1.set_xlabel(simulation.time_name)
    ax1.legend()
    ax1.set_title(title or "free-run simulation")
    ax2.plot(t, (simulation.y_true - simulation.y_pred)[:, channel].numpy(), lw=1)
    ax2.set_xlabel(simulation.time_name)
    ax2.set_title("error")
    fig.tight_layout()
    return fig


def plot_eigenvalues(eigenvalues: torch.Tensor):
    """Jacobian eigenvalues along a trajectory in the complex plane (from :func:`jacobian_eigenvalues`)."""
    fig, (ax,) = _figure(1, width=4.5, height=4)
    ev = eigenvalues.flatten()
    ax.scatter(ev.real.numpy(), ev.imag.numpy(), s=6, alpha=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title("eigenvalues of ∂f/∂h")
    fig.tight_layout()
    return fig
