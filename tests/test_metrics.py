import math

import numpy as np
import pytest
import torch

import odernn_lite as ol


def test_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    y_hat = np.array([1.0, 2.0, 3.0, 5.0])
    assert ol.rmse(y, y_hat) == pytest.approx(0.5)
    assert ol.nrmse(y, y_hat) == pytest.approx(0.5 / math.sqrt(1.25))
    assert ol.fit(y, y_hat) == pytest.approx(100 * (1 - 1 / math.sqrt(5)))
    assert ol.r2(y, y_hat) == pytest.approx(1 - 1 / 5)


def test_perfect_and_mean_predictions():
    y = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ol.fit(y, y), torch.full((2,), 100.0, dtype=torch.float64))
    mean = y.mean(0).expand_as(y)
    assert torch.allclose(ol.fit(y, mean), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ol.r2(y, mean), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        ol.rmse(np.zeros(3), np.zeros(4))
