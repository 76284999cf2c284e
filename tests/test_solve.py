"""Solvers against exact solutions, per method with its own tolerance."""

import math

import pytest
import torch
from torch import nn

import odernn_lite as ol
from odernn_lite.solve import METHODS

# Max abs error allowed on the problems below (unit-scale solutions over a few time units):
# fixed-step methods with step 0.01, adaptive ones with rtol=1e-7, atol=1e-9 in float64.
# dopri8 and bosh3 take long steps and torchdiffeq reads the output times off a low-order
# interpolant between them, so its error at output times is larger than its step error.
# adaptive_heun is 2nd order: at rtol=1e-7 it needs ~10^4 steps, so it gets looser tolerances.
TOL = {"euler": 3e-2, "midpoint": 1e-4, "rk4": 1e-8, "dopri5": 1e-6, "dopri8": 1e-4, "bosh3": 1e-4, "adaptive_heun": 1e-3}


def kw(method):
    if method == "adaptive_heun":
        return {"rtol": 1e-5, "atol": 1e-7}
    return {"step_size": 0.01, "rtol": 1e-7, "atol": 1e-9}


class Linear(nn.Module):
    """dh/dt = A h + b u(t)."""

    def __init__(self, A, b=None, u=None):
        super().__init__()
        self.A, self.b, self.u = A, b, u

    def forward(self, t, h):
        dh = h @ self.A.T
        if self.u is not None:
            dh = dh + self.u(t)[:, None] * self.b
        return dh


@pytest.mark.parametrize("method", METHODS)
def test_exponential_decay(method):
    A = torch.tensor([[-1.5]], dtype=torch.float64)
    t = torch.linspace(0, 2, 11, dtype=torch.float64)
    h0 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    sol = ol.solve(Linear(A), h0, t, method=method, **kw(method))
    exact = h0[:, None, :] * torch.exp(-1.5 * t)[None, :, None]
    assert sol.states.shape == (2, 11, 1)
    assert (sol.states - exact).abs().max() < TOL[method]


@pytest.mark.parametrize("method", METHODS)
def test_harmonic_oscillator(method):
    w = 2.0
    A = torch.tensor([[0.0, 1.0], [-(w**2), 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    sol = ol.solve(Linear(A), torch.tensor([[1.0, 0.0]], dtype=torch.float64), t, method=method, **kw(method))
    exact = torch.stack([torch.cos(w * t), -w * torch.sin(w * t)], dim=-1)
    assert (sol.states[0] - exact).abs().max() < TOL[method] * 10


@pytest.mark.parametrize("method", METHODS)
def test_forced_linear_system(method):
    # dh/dt = -h + sin(t), h(0)=0  ->  h = (sin t - cos t + e^{-t}) / 2
    A = torch.tensor([[-1.0]], dtype=torch.float64)
    f = Linear(A, torch.ones(1, dtype=torch.float64), lambda t: torch.sin(t).reshape(1))
    t = torch.linspace(0, 4, 9, dtype=torch.float64)
    sol = ol.solve(f, torch.zeros(1, 1, dtype=torch.float64), t, method=method, **kw(method))
    exact = (torch.sin(t) - torch.cos(t) + torch.exp(-t)) / 2
    assert (sol.states[0, :, 0] - exact).abs().max() < TOL[method]


def test_nfe_counts_forward_and_adjoint_backward():
    calls = []

    class Decay(nn.Module):
        def __init__(self):
            super().__init__()
            self.k = nn.Parameter(torch.tensor(0.5))

        def forward(self, t, h):
            calls.append(1)
            return -self.k * h

    f = Decay()
    t = torch.linspace(0, 1, 5)
    sol = ol.solve(f, torch.ones(1, 1), t, method="rk4", step_size=0.1)
    assert sol.nfe == 4 * 12 == len(calls)  # rk4: 4 evaluations per step; 4 gaps of 0.25, 3 steps each
    sol.states.sum().backward()
    assert sol.nfe_backward == 0  # direct backprop re-uses the graph
    calls.clear()
    sol = ol.solve(f, torch.ones(1, 1), t, method="rk4", step_size=0.1, adjoint=True)
    sol.states.sum().backward()
    assert sol.nfe_backward > 0 and sol.nfe + sol.nfe_backward == len(calls)


def test_adjoint_gradient_matches_direct():
    torch.manual_seed(0)
    field = ol.CTRNNField(4, 1)
    field.double().set_input(lambda t: torch.sin(t).reshape(1, 1).expand(2, 1))
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    h0 = torch.zeros(2, 4, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        sol = ol.solve(field, h0, t, rtol=1e-9, atol=1e-11, adjoint=adjoint)
        field.readout(sol.states).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_time_is_exact_far_from_zero():
    # Absolute time 1e4 with steps of 1e-3: float32 cannot hold t0 + 1e-3 exactly; the field must see float64.
    seen = []

    class Probe(nn.Module):
        def forward(self, t, h):
            seen.append(t)
            return torch.zeros_like(h)

    t = 1e4 + torch.tensor([0.0, 1e-3, 2e-3], dtype=torch.float64)
    ol.solve(Probe(), torch.zeros(1, 1), t, method="euler")
    assert seen[0].dtype == torch.float64
    assert abs(float(seen[1]) - (1e4 + 1e-3)) < 1e-9


def test_per_row_times_match_separate_solves():
    A = torch.tensor([[-0.7]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.3, 1.1], [0.0, 0.5, 0.9]], dtype=torch.float64)
    h0 = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    sol = ol.solve(Linear(A), h0, t, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sol.states[..., 0], h0 * torch.exp(-0.7 * t))


def test_step_budget_error_says_what_to_do():
    class Stiff(nn.Module):
        def forward(self, t, h):
            return -1e6 * h

    with pytest.raises(ol.SolverError, match="max_steps=50.*Try"):
        ol.solve(Stiff(), torch.ones(1, 1), torch.tensor([0.0, 10.0]), max_steps=50)


def test_unknown_method():
    with pytest.raises(ValueError, match="valid methods"):
        ol.solve(nn.Identity(), torch.ones(1, 1), torch.tensor([0.0, 1.0]), method="rk45")


def test_increasing_time_required():
    with pytest.raises(ValueError, match="strictly increasing"):
        ol.solve(nn.Identity(), torch.ones(1, 1), torch.tensor([0.0, 1.0, 1.0]))


def test_float32_states_keep_their_dtype():
    sol = ol.solve(Linear(torch.tensor([[-1.0]])), torch.ones(1, 1), torch.linspace(0, 1, 3, dtype=torch.float64))
    assert sol.states.dtype == torch.float32
    assert math.isclose(float(sol.states[0, -1, 0]), math.exp(-1), rel_tol=1e-3)


def test_step_size_is_the_largest_step_and_outputs_are_exact_solver_points():
    class Decay(nn.Module):
        def forward(self, t, h):
            return -h

    t = torch.tensor([0.0, 0.3, 2.3, 2.4, 6.0], dtype=torch.float64)
    sol = ol.solve(Decay(), torch.ones(1, 1, dtype=torch.float64), t, method="rk4", step_size=0.5)
    assert sol.nfe == 4 * (1 + 4 + 1 + 8)  # gaps 0.3, 2.0, 0.1, 3.6 -> 1, 4, 1, 8 steps
    torch.testing.assert_close(sol.states[0, :, 0], torch.exp(-t), rtol=5e-3, atol=0)  # one rk4 step over 3.6 would be off by 100x
    # split at an output time, the two halves take the same steps as the whole
    first = ol.solve(Decay(), torch.ones(1, 1, dtype=torch.float64), t[:3], method="rk4", step_size=0.5)
    second = ol.solve(Decay(), first.states[:, -1], t[2:], method="rk4", step_size=0.5)
    torch.testing.assert_close(torch.cat([first.states, second.states[:, 1:]], 1), sol.states, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="step_size must be positive"):
        ol.solve(Decay(), torch.ones(1, 1), t, method="rk4", step_size=0.0)


def test_adjoint_backward_solve_takes_the_same_largest_step():
    class Decay(nn.Module):
        def __init__(self):
            super().__init__()
            self.k = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

        def forward(self, t, h):
            return -self.k * h

    t = torch.arange(5, dtype=torch.float64)
    f = Decay()
    sol = ol.solve(f, torch.ones(1, 1, dtype=torch.float64), t, method="rk4", step_size=0.25, adjoint=True)
    sol.states.sum().backward()
    assert sol.nfe == 4 * 16 and sol.nfe_backward == 4 * 16  # 4 gaps x 4 steps, forwards and backwards
    adjoint_grad = f.k.grad.clone()
    f.k.grad = None
    ol.solve(f, torch.ones(1, 1, dtype=torch.float64), t, method="rk4", step_size=0.25).states.sum().backward()
    assert float(abs(adjoint_grad - f.k.grad)) < 1e-5 * float(abs(f.k.grad))
