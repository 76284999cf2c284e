import pytest
import torch

from odernn_lite import Interpolation
from odernn_lite.inputs import KINDS

# Degree of the polynomials each kind reproduces exactly (see the module docstring).
EXACT_DEGREE = {"zoh": 0, "linear": 1, "hermite": 2, "natural": 1}
POLYNOMIALS = {
    0: lambda s: 0.3 + 0 * s,
    1: lambda s: 0.3 - 0.7 * s,
    2: lambda s: 0.3 - 0.7 * s + 0.25 * s**2,
}


def _irregular_knots(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cumsum(0.5 + torch.rand(n, generator=g, dtype=torch.float64), 0)


@pytest.mark.parametrize("kind", KINDS)
def test_exact_at_knots_batched(kind):
    t = _irregular_knots()
    u = torch.randn(3, len(t), 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    interp = Interpolation(t, u, kind=kind)
    torch.testing.assert_close(interp(t), u)
    # scalar query returns (batch, channels)
    torch.testing.assert_close(interp(t[4]), u[:, 4])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("degree", [0, 1, 2])
def test_polynomials_of_its_order(kind, degree):
    t = _irregular_knots()
    poly = POLYNOMIALS[degree]
    u = poly(t)[None, :, None]
    interp = Interpolation(t, u, kind=kind)
    tq = torch.linspace(float(t[0]), float(t[-1]), 301, dtype=torch.float64)
    err = (interp(tq)[0, :, 0] - poly(tq)).abs().max()
    if degree <= EXACT_DEGREE[kind]:
        assert err < 1e-10
    else:  # it is an approximation of a higher-degree polynomial, so it must show an error
        assert err > 1e-6


def test_per_window_knots_and_clamping():
    t = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 13.0]], dtype=torch.float64)
    u = torch.tensor([[0.0, 1.0, 2.0], [5.0, 7.0, 11.0]])[..., None]
    interp = Interpolation(t, u, kind="linear")
    out = interp(torch.tensor([0.5, 12.0], dtype=torch.float64))
    # row 0: 0.5 -> 0.5; 12 beyond the last knot -> held at 2. row 1: 0.5 before the first knot -> held at 5; 12 -> 9.
    torch.testing.assert_close(out[..., 0], torch.tensor([[0.5, 2.0], [5.0, 9.0]]))


def test_zoh_holds_left_sample():
    t = torch.arange(4.0, dtype=torch.float64)
    u = torch.tensor([1.0, -2.0, 3.0, 4.0])[None, :, None]
    interp = Interpolation(t, u, kind="zoh")
    torch.testing.assert_close(interp(torch.tensor([0.99, 1.0, 2.5])), torch.tensor([[[1.0], [-2.0], [3.0]]]))


@pytest.mark.parametrize("kind", KINDS)
def test_differentiable_wrt_values(kind):
    t = _irregular_knots(6)
    u = torch.randn(1, 6, 1, dtype=torch.float64, requires_grad=True)
    tq = torch.tensor([1.3, 2.2, 3.1], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: Interpolation(t, v, kind=kind)(tq), (u,))


def test_unknown_kind_lists_valid_ones():
    with pytest.raises(ValueError, match="valid kinds are"):
        Interpolation(torch.arange(3.0), torch.zeros(1, 3, 1), kind="quintic")


def test_float64_time_resolves_small_steps_far_from_zero():
    # 1e6 samples of 0.5 µs each in µs units would lose the half-step in float32; kept in float64 here.
    t = 5e5 + torch.arange(3, dtype=torch.float64) * 0.5
    u = torch.tensor([0.0, 1.0, 2.0])[None, :, None]
    out = Interpolation(t, u, kind="linear")(torch.tensor(5e5 + 0.25, dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([[0.5]]))


@pytest.mark.parametrize("kind", KINDS)
def test_shared_knots_fast_path_matches_per_row_knots(kind):
    # rows equal up to rounding take the shared-grid path; a tiny real difference takes the general one
    t = _irregular_knots()
    u = torch.randn(3, len(t), 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    shared = Interpolation(t.expand(3, -1) + torch.tensor([[0.0], [1e-13], [-1e-13]], dtype=torch.float64), u, kind=kind)
    general = Interpolation(t.expand(3, -1) + torch.tensor([[0.0], [1e-6], [-1e-6]], dtype=torch.float64), u, kind=kind)
    assert shared.grid is not None and general.grid is None
    tq = torch.linspace(float(t[0]) - 1, float(t[-1]) + 1, 97, dtype=torch.float64)
    torch.testing.assert_close(shared(tq), general(tq), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(shared(tq[40]), general(tq[40]), rtol=1e-4, atol=1e-5)
