import pytest
import torch
from torchdiffeq import odeint

import odernn_lite as ol


def test_forum_field_runs_with_the_posted_shapes():
    torch.manual_seed(0)
    field = ol.ForumRNNField(hidden_size=10)
    field.get_new_observation(torch.tensor([[[0.3]]]))  # x0 = x_train[batch, 0].view(-1, 1, 1)
    y0, h0 = torch.zeros(1, 1, 1), torch.zeros(1, 1, 10)
    pred, states = odeint(field, (y0, h0), torch.linspace(0, 1, 5))
    assert pred.shape == (5, 1, 1, 1) and states.shape == (5, 1, 1, 10)
    # dh/dt = tanh(...) has no decay term: starting from h = 0 the state moves at rate <= 1
    dy, dh = field(torch.tensor(0.0), (y0, h0))
    assert dh.abs().max() <= 1 and dy.shape == (1, 1, 1)


def test_forum_field_state_drifts_past_the_tanh_range():
    torch.manual_seed(1)
    field = ol.ForumRNNField(hidden_size=8)
    with torch.no_grad():  # a bias that keeps every unit positive: nothing pulls h back
        field.rnn.bias_ih_l0.fill_(2.0)
    field.set_input(torch.ones(1, 1))
    sol = ol.solve(field, (torch.zeros(1, 1, 1), torch.zeros(1, 1, 8)), torch.linspace(0, 20, 5), method="rk4", step_size=0.5)
    assert sol.states[1].abs().max() > 5  # |h| grows without bound, well outside tanh's (-1, 1)


@pytest.mark.parametrize("name", ["forum", "ctrnn", "gruode", "neural-ss", "linear"])
def test_fields_shapes_and_readout(name):
    torch.manual_seed(0)
    field = ol.FIELDS[name](6, 2, 3)
    field.set_input(ol.interpolate(torch.arange(5.0), torch.randn(4, 5, 2)))
    h = torch.randn(4, 6)
    assert field(torch.tensor(1.5), h).shape == (4, 6)
    assert field.readout(h).shape == (4, 3)


@pytest.mark.parametrize("name", ["ctrnn", "gruode"])
def test_leaky_fields_stay_bounded(name):
    torch.manual_seed(0)
    field = ol.FIELDS[name](8, 1, 1)
    field.set_input(torch.full((2, 1), 5.0))
    sol = ol.solve(field, torch.zeros(2, 8), torch.linspace(0, 50, 6), method="rk4", step_size=0.25)
    assert sol.states.abs().max() <= 1.0 + 1e-5  # h relaxes towards tanh(...) in (-1, 1)


def test_neural_state_space_starts_near_linear():
    torch.manual_seed(0)
    nss = ol.NeuralStateSpace(3, 1, 1, a_init=0.5)
    lin = ol.LinearStateSpace(3, 1, 1, a_init=0.5)
    lin.B.weight.data.copy_(nss.B.weight.data)
    u = torch.randn(5, 1)
    x = torch.randn(5, 3)
    nss.set_input(u), lin.set_input(u)
    diff = (nss(0.0, x) - lin(0.0, x)).abs().max()
    assert 0 < diff < 0.05  # the MLP's correction starts small but is there


def test_field_without_input_says_what_to_do():
    with pytest.raises(RuntimeError, match="set_input"):
        ol.CTRNNField(3)(torch.tensor(0.0), torch.zeros(1, 3))


def test_input_is_not_part_of_the_state_dict():
    field = ol.CTRNNField(3).set_input(ol.interpolate(torch.arange(3.0), torch.zeros(1, 3, 1)))
    assert all("knots" not in k and "values" not in k for k in field.state_dict())
