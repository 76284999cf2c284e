"""The Cascaded Tanks loader (official ``nonlinear-benchmarks`` loader, offline cache)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from odernn_lite.datasets import ENV_VAR, DataUnavailable, cascaded_tanks

CACHE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nonlinear_benchmarks_cache"


@pytest.fixture(scope="module")
def cache():
    if not (CACHE / "Cascaded_Tanks" / "CascadedTanksFiles" / "dataBenchmark.mat").exists():
        pytest.skip(f"{CACHE} not present (shared/ is beside the repository in CI)")
    return CACHE.resolve()


def test_records_match_the_mat_file(cache):
    est, test = cascaded_tanks(cache)
    mat = scipy.io.loadmat(cache / "Cascaded_Tanks" / "CascadedTanksFiles" / "dataBenchmark.mat")
    assert len(est) == len(test) == 1024
    np.testing.assert_allclose(est.u[:, 0].numpy(), mat["uEst"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(test.y[:, 0].numpy(), mat["yVal"][:, 0], rtol=1e-6)
    assert est.dt_median == 4.0 and est.is_regular and float(test.t[-1]) == 4.0 * 1023  # Ts = 4 s, not uint8 arithmetic
    assert float(est.y.max()) == pytest.approx(10.0) and (est.y[:, 0] >= 9.999).sum() > 10  # the overflow
    assert est.source == "Cascaded Tanks (estimation)" and test.output_names == ("y",)


def test_cache_folder_comes_from_the_environment(cache, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(cache))
    est, _ = cascaded_tanks()
    assert len(est) == 1024
    monkeypatch.setenv(ENV_VAR, str(cache / "missing"))
    with pytest.raises(DataUnavailable, match=f"missing.*from {ENV_VAR}.*does not exist"):
        cascaded_tanks()


def test_missing_cache_folder_is_named(tmp_path):
    with pytest.raises(DataUnavailable, match=f"{tmp_path / 'nowhere'}.*does not exist"):
        cascaded_tanks(tmp_path / "nowhere")
