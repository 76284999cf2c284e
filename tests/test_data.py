"""Loading records, windows and splits; every bad input names the file, line and column."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import odernn_lite as ol

GOOD = "T,in,out\n0.0,1.0,0.5\n0.5,2.0,0.25\n1.0,3.0,0.125\n1.5,4.0,0.0625\n"


@pytest.fixture
def write(tmp_path):
    def _write(text, name="data.csv"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def test_load_good_file(write):
    rec = ol.load_csv(write(GOOD))
    assert len(rec) == 4 and rec.t.dtype == torch.float64 and rec.u.dtype == torch.float32
    assert rec.u.shape == (4, 1) and rec.y.shape == (4, 1)
    assert rec.is_regular and rec.dt_median == 0.5 and rec.dt_min == 0.5 and rec.dt_max == 0.5
    torch.testing.assert_close(rec.y[:, 0], torch.tensor([0.5, 0.25, 0.125, 0.0625]))


def test_time_unit_and_sample_units(write):
    rec = ol.load_csv(write(GOOD), time_unit="us")
    assert rec.dt_median == pytest.approx(0.5e-6)
    samples = rec.in_sample_units()
    torch.testing.assert_close(samples.t, torch.arange(4, dtype=torch.float64))
    assert samples.time_scale == pytest.approx(0.5e-6)


def test_microsecond_steps_stay_exact_far_from_zero(write):
    lines = ["T,in,out"] + [f"{1000 + 0.5e-6 * k:.7f},0,0" for k in range(5)]
    rec = ol.load_csv(write("\n".join(lines) + "\n"))
    assert rec.is_regular and rec.dt_median == pytest.approx(0.5e-6, rel=1e-6)


def test_irregular_sampling_reported(write):
    rec = ol.load_csv(write("T,in,out\n0,0,0\n1,0,0\n3,0,0\n3.5,0,0\n"))
    assert not rec.is_regular
    assert (rec.dt_min, rec.dt_median, rec.dt_max) == (0.5, 1.0, 2.0)
    assert rec.summary()["sampling"] == "irregular"


def test_custom_columns_and_extra_columns_ignored(write):
    rec = ol.load_csv(write("time,V_C,V_IN,extra\n0,1,2,x\n1,3,4,y\n"), time="time", input="V_IN", output="V_C")
    assert rec.u[:, 0].tolist() == [2.0, 4.0] and rec.y[:, 0].tolist() == [1.0, 3.0]


BAD = {
    "missing column": ("T,in,y\n0,1,2\n", r"data\.csv: output column 'out' not found; the columns are \['T', 'in', 'y'\]"),
    "nan": ("T,in,out\n0,1,2\n1,nan,2\n", r"data\.csv: line 3, column 'in': value is nan \(not finite\)"),
    "inf": ("T,in,out\n0,1,2\n1,1,inf\n", r"data\.csv: line 3, column 'out': value is inf"),
    "non-numeric": ("T,in,out\n0,1,2\n1,abc,2\n", r"data\.csv: line 3, column 'in': 'abc' is not a number"),
    "empty cell": ("T,in,out\n0,1,2\n1,,2\n", r"data\.csv: line 3, column 'in': is empty"),
    "duplicate time": ("T,in,out\n0,1,2\n1,1,2\n1,1,2\n", r"data\.csv: line 4, column 'T': time 1\.0 repeats the previous time 1\.0 \(line 3\)"),
    "decreasing time": ("T,in,out\n0,1,2\n2,1,2\n1,1,2\n", r"data\.csv: line 4, column 'T': time 1\.0 goes back from the previous time 2\.0"),
    "empty file": ("", r"data\.csv: the file is empty"),
    "header only": ("T,in,out\n", r"data\.csv: header only, no data rows"),
    "ragged row": ("T,in,out\n0,1,2\n1,1\n", r"data\.csv: line 3 has 2 fields but the header has 3 \(ragged row\)"),
    "ragged long row": ("T,in,out\n0,1,2\n1,1,2,3\n", r"data\.csv: line 3 has 4 fields but the header has 3"),
    "wrong delimiter": ("T;in;out\n0;1;2\n", r"data\.csv: line 1 has a single column 'T;in;out'.*pass delimiter=';'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_the_problem(write, case):
    text, message = BAD[case]
    with pytest.raises(ValueError, match=message):
        ol.load_csv(write(text))


def test_missing_file_and_unknown_time_unit(tmp_path, write):
    with pytest.raises(ValueError, match="nope.csv: file not found"):
        ol.load_csv(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"unknown time_unit 'hours'; valid units are"):
        ol.load_csv(write(GOOD), time_unit="hours")


def test_binary_file(write, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\x00")
    with pytest.raises(ValueError, match="not a text file"):
        ol.load_csv(path)


def test_from_dataframe_checks_like_load_csv():
    df = pd.DataFrame({"T": [0.0, 1.0, 2.0], "in": [1.0, 2.0, 3.0], "out": [0.0, 1.0, 0.0]})
    rec = ol.from_dataframe(df)
    assert len(rec) == 3 and rec.source == "<dataframe>"
    bad = df.astype(object)
    bad.loc[1, "in"] = "x"
    with pytest.raises(ValueError, match=r"row 1, column 'in': 'x' is not a number"):
        ol.from_dataframe(bad)
    with pytest.raises(ValueError, match=r"row 2, column 'T': time 1\.0 goes back"):
        ol.from_dataframe(df.assign(T=[0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"row 1, column 'out': value is nan"):
        ol.from_dataframe(df.assign(out=[0.0, np.nan, 1.0]))


def _record(n):
    t = torch.arange(n, dtype=torch.float64)
    return ol.Record(t=t, u=t[:, None].float(), y=-t[:, None].float())


def test_windows_reshape_special_case():
    rec = _record(12)
    w = ol.windows(rec, 4)
    assert w.u.shape == (3, 4, 1) and w.remainder == 0
    torch.testing.assert_close(w.u, rec.u.reshape(3, 4, 1))  # the forum's reshape(nbatchs, -1)


def test_windows_report_the_remainder():
    rec = _record(14)
    with pytest.warns(UserWarning, match="leave the last 2 samples uncovered"):
        w = ol.windows(rec, 4)
    assert w.remainder == 2 and len(w) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = ol.windows(rec, 4, cover_end=True)
    assert w.remainder == 0 and w.start.tolist() == [0, 4, 8, 10]
    covered = torch.zeros(14, dtype=torch.bool)
    covered[(w.start[:, None] + torch.arange(4)).flatten()] = True
    assert covered.all()


def test_windows_with_stride_overlap():
    w = ol.windows(_record(10), 4, stride=2)
    assert w.start.tolist() == [0, 2, 4, 6] and w.remainder == 0
    torch.testing.assert_close(w.t[1], torch.arange(2, 6, dtype=torch.float64))


def test_fewer_rows_than_one_window():
    with pytest.raises(ValueError, match="5 rows are fewer than one window of 8 samples"):
        ol.windows(_record(5), 8)


def test_split_is_time_ordered():
    train, val = ol.split(_record(10), 0.3)
    assert len(train) == 7 and len(val) == 3
    assert float(train.t[-1]) < float(val.t[0])


def test_standardisation_round_trip():
    rec = _record(20)
    stats = rec.stats()
    z = rec.standardized(stats)
    assert abs(float(z.u.mean())) < 1e-6 and float(z.u.std()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(stats.unscale_y(z.y), rec.y)
    again = ol.Stats.from_dict(stats.to_dict())
    torch.testing.assert_close(again.y_std, stats.y_std)


def test_shared_rlc_file_loads():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rlc_simulated" / "RLC_data_id.csv"
    if not path.exists():
        pytest.skip(f"{path} not present (shared/ is beside the repository in CI)")
    rec = ol.load_csv(path, time="time", input="V_IN", output="V_C")
    assert len(rec) == 10_000 and rec.is_regular
    assert rec.dt_median == pytest.approx(0.5e-6, rel=1e-6)


def test_directory_and_bad_delimiter_argument(tmp_path, write):
    with pytest.raises(ValueError, match="cannot be read"):
        ol.load_csv(tmp_path)
    with pytest.raises(ValueError, match="not a valid CSV file with delimiter ';;'"):
        ol.load_csv(write(GOOD), delimiter=";;")
