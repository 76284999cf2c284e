import matplotlib

matplotlib.use("Agg")

import pandas as pd
import torch
from torch import nn

import odernn_lite as ol
from odernn_lite import diagnose


class Decay(nn.Module):
    """dh/dt = -k h: ∂h(T)/∂h(0) = e^{-kT}, so ‖∂L/∂h0‖ for L = mean(h(T)²) is known."""

    def __init__(self, k):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k, dtype=torch.float64))

    def forward(self, t, h):
        return -self.k * h


def test_state_gradient_vs_horizon_matches_the_exact_decay():
    h0 = torch.ones(1, 1, dtype=torch.float64)
    table = diagnose.state_gradient_vs_horizon(Decay(0.5), h0, [1.0, 4.0, 16.0], rtol=1e-9, atol=1e-12)
    exact = torch.tensor([2 * torch.exp(torch.tensor(-1.0 * T)).item() for T in (1.0, 4.0, 16.0)], dtype=torch.float64)
    torch.testing.assert_close(torch.tensor(table["grad_norm"].values), exact, rtol=1e-5, atol=1e-12)
    assert (table["nfe"] > 0).all() and (table["param_grad_norm"] > 0).all()


def test_saturation_and_magnitude():
    a = torch.tensor([[0.0, 0.995, -0.999, 0.5]])
    assert diagnose.saturated_fraction(a).tolist() == [0.5]
    assert diagnose.state_magnitude(torch.tensor([[[3.0, 4.0]]])).tolist() == [[5.0]]
    assert diagnose.nfe_per_unit_time(40, torch.tensor([0.0, 2.0])) == 20.0


def test_jacobian_eigenvalues_of_a_linear_field():
    field = ol.LinearStateSpace(2, a_init=0.3)
    field.set_input(torch.zeros(1, 1))
    eig = diagnose.jacobian_eigenvalues(field, torch.randn(3, 2))
    torch.testing.assert_close(eig.real, torch.full((3, 2), -0.3))


def test_gradient_norms_table_and_plots():
    record = ol.from_dataframe(ol.circuits.linear_rlc(200))
    torch.manual_seed(0)
    model = ol.ODEModel("ctrnn", 3, encoder_window=3).set_scaling(record)
    history = ol.MultipleShootingTrainer(model, window=10, batch_size=4, progress=False).fit(record, iters=2)
    norms = diagnose.gradient_norms(history)
    assert list(norms.index) == [1, 2] and "field.W.weight" in norms.columns
    assert (norms.to_numpy() >= 0).all()
    sim = ol.simulate(model, record)
    table = pd.DataFrame({"horizon": [1.0, 2.0], "grad_norm": [1.0, 0.5], "nfe": [10, 20]})
    for fig in (diagnose.plot_history(history), diagnose.plot_simulation(sim), diagnose.plot_gradient_vs_horizon(table),
                diagnose.plot_eigenvalues(torch.randn(4, 2, dtype=torch.complex64))):
        assert len(fig.axes) >= 1


def test_saved_tensor_bytes_grows_with_steps_for_direct_backprop_only():
    torch.manual_seed(0)
    field = ol.NeuralStateSpace(4, hidden=16, mlp_init_std=0.3)
    kept = {}
    for steps in (20, 80):
        t = torch.arange(steps + 1, dtype=torch.float64)
        field.set_input(ol.interpolate(t, torch.randn(2, steps + 1, 1)))
        for adjoint in (False, True):
            with ol.diagnose.saved_tensor_bytes() as saved:
                ol.solve(field, torch.zeros(2, 4), t, method="rk4", adjoint=adjoint).states.sum()
            kept[(steps, adjoint)] = saved["bytes"]
    assert kept[(80, False)] > 3.5 * kept[(20, False)]  # linear in the number of steps
    assert kept[(80, False)] > 10 * kept[(80, True)]  # the adjoint keeps only the trajectory
    with ol.diagnose.saved_tensor_bytes() as saved:
        torch.ones(3).sum()
    assert saved == {"bytes": 0, "tensors": 0}  # nothing requires grad: nothing saved
