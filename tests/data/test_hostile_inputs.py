"""Inputs a hostile but fair user gives: odd line endings, duplicate column names, text that is not UTF-8, numbers
at the edge of float64, inf and NaN in a config, a learning rate that makes training diverge, and output paths
that cannot be written. Each is read the same everywhere or refused with a `DeepwrightError` that names it."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepwright.config import NumberFeatureConfig, load_config
from deepwright.data.io import atomic_path, check_writable, read_table, write_problem
from deepwright.data.stream import read_chunks, read_delimited_bytes
from deepwright.errors import ConfigError, DataError
from deepwright.features.number import NumberFeature, mean_and_spread
from tests.helpers import Outcome, assert_user_error, make_config, make_frame, write_config, write_frame

CSV = "age,city,label\n31,Lyon,high\n45,Nice,low\n,Paris,high\n"
COLUMNS = ["age", "city", "label"]


def every_reader(path: Path) -> list[pd.DataFrame]:
    """The table of `path` as read_table, the chunked reader (chunks of 2 rows) and the upload reader read it."""
    whole = read_table(path).frame
    chunks = pd.concat([chunk.table.frame for chunk in read_chunks(path, columns=COLUMNS, chunk_rows=2)])
    upload = read_delimited_bytes(path.read_bytes(), columns=COLUMNS, source="upload").frame
    return [whole, chunks, upload]


# -- line endings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_reader_reads_lf_crlf_and_classic_mac_cr_alike(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(CSV.replace("\n", ending).encode())
    for frame in every_reader(path):
        assert list(frame.columns) == COLUMNS
        assert frame["city"].tolist() == ["Lyon", "Nice", "Paris"]
        assert [str(value) for value in frame["label"]] == ["high", "low", "high"]


def test_a_cr_only_file_trained_on_is_predicted_chunk_by_chunk(tmp_path: Path) -> None:
    """The reported case: `train` read the CR-only file, `predict`'s chunked reader ended in a traceback."""
    path = tmp_path / "mac.csv"
    path.write_bytes(("a,b\r" + "".join(f"{i},{i % 3}\r" for i in range(25))).encode())
    chunks = list(read_chunks(path, columns=["a", "b"], chunk_rows=10))
    assert [len(chunk.table) for chunk in chunks] == [10, 10, 5]
    assert chunks[-1].table.frame.index[-1] == 24  # rows still counted from the file's first data row


# -- duplicate column names --------------------------------------------------------------------------------


def test_duplicate_column_names_are_refused_by_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("age,city,age,label\n1,Lyon,2,high\n", encoding="utf-8")
    for read in (
        lambda: read_table(path),
        lambda: list(read_chunks(path, columns=["city"])),
        lambda: read_delimited_bytes(path.read_bytes(), columns=["city"], source="upload"),
        lambda: read_table(pd.DataFrame([[1, 2]], columns=["x", "x"])),
    ):
        with pytest.raises(DataError, match=r"'(age|x)' appears more than once"):
            read()


def test_init_and_train_refuse_duplicate_names_naming_them_and_the_file(tmp_path: Path) -> None:
    from deepwright.data.infer import infer_config

    path = tmp_path / "twice.csv"
    path.write_text("a,b,a,b,label\n1,2,3,4,x\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        infer_config(read_table(path), "label")
    assert str(path) in str(caught.value) and "'a', 'b' appear more than once" in str(caught.value)


# -- encodings -----------------------------------------------------------------------------------------------


def test_latin1_cells_are_refused_naming_the_line_and_byte_never_read_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("age,city,label\n31,Lyon,high\n45,Nîce,low\n".encode("latin-1"))
    for read in (
        lambda: read_table(path),
        lambda: list(read_chunks(path, columns=COLUMNS)),
        lambda: read_delimited_bytes(path.read_bytes(), columns=COLUMNS, source="upload"),
    ):
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert "not UTF-8" in message and "line 3" in message and "0xee" in message and "iconv" in message


def test_a_latin1_header_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes("âge,label\n1,x\n".encode("latin-1"))
    for read in (lambda: read_table(path), lambda: list(read_chunks(path, columns=["label"]))):
        with pytest.raises(DataError, match="line 1 has the byte 0xe2"):
            read()


def test_a_utf8_file_with_a_byte_order_mark_reads_as_plain_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff".encode() + CSV.encode())
    for frame in every_reader(path):
        assert list(frame.columns) == COLUMNS


def test_parquet_bytes_columns_become_text_or_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as parquet

    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    parquet.write_table(pa.table({"city": pa.array([b"Lyon", "Nîce".encode()], pa.binary())}), good)
    parquet.write_table(pa.table({"city": pa.array([b"Lyon", "Nîce".encode("latin-1")], pa.binary())}), bad)
    assert read_table(good).frame["city"].tolist() == ["Lyon", "Nîce"]
    assert next(read_chunks(good, columns=["city"])).table.frame["city"].tolist() == ["Lyon", "Nîce"]
    for read in (lambda: read_table(bad), lambda: list(read_chunks(bad, columns=["city"]))):
        with pytest.raises(DataError, match="column 'city': holds bytes that are not UTF-8"):
            read()


# -- numbers at the edge of float64 ---------------------------------------------------------------------------


@pytest.mark.parametrize("normalization", ["zscore", "minmax", "log"])
@pytest.mark.parametrize(
    "values", [[1e308, 1.0, 2.0, 3.0], [1e308, -1e308, 5.0], [1e-308, 2e-308, 3e-308]], ids=["1e308", "±1e308", "tiny"]
)
def test_one_huge_or_tiny_number_keeps_the_column_alive(values: list[float], normalization: str) -> None:
    """Before: one 1e308 made the scale infinite and every scaled value 0."""
    feature = NumberFeature(NumberFeatureConfig(name="x", type="number", normalization=normalization), "input")
    column = np.array(values)
    feature.fit(column)
    assert np.isfinite(feature.center_) and np.isfinite(feature.scale_) and feature.scale_ > 0
    scaled = feature.transform(column).ravel()
    assert np.isfinite(scaled).all()
    assert np.ptp(scaled) > 0.5  # the column still tells its rows apart (it was all zeros)


@pytest.mark.parametrize("values", [[1e308, 1.0, 2.0], [-1e308, 1e308], [1e-308, 3e-308]])
def test_a_huge_or_tiny_target_is_learned_in_finite_units(values: list[float]) -> None:
    feature = NumberFeature(NumberFeatureConfig(name="y", type="number"), "output")
    feature.fit(np.array(values))
    scaled = feature.transform(np.array(values))
    assert np.isfinite(scaled).all() and np.abs(scaled).max() > 0.5
    predictions = feature.postprocess(scaled)["y_prediction"]  # back in the target's units, to float32's precision
    np.testing.assert_allclose(predictions, values, rtol=1e-6, atol=1e-6 * max(abs(value) for value in values))


def test_mean_and_spread_match_numpy_on_ordinary_numbers() -> None:
    values = np.random.default_rng(0).normal(3000, 500, 1000)
    assert mean_and_spread(values) == (float(values.mean()), float(values.std()))
    assert mean_and_spread(np.full(5, 7.0)) == (7.0, 1.0)  # a constant column divides by 1


def test_a_value_beyond_float32_is_refused_with_a_clear_message() -> None:
    feature = NumberFeature(NumberFeatureConfig(name="x", type="number", normalization="none"), "input")
    feature.fit(np.array([1.0, 2.0]))
    with pytest.raises(Exception, match="too large: the model computes in float32"):
        feature.transform(np.array([1e308]))


# -- non-finite numbers in a config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, value",
    [
        (("trainer", "optimizer", "lr"), float("inf")),
        (("trainer", "optimizer", "lr"), float("nan")),
        (("trainer", "optimizer", "weight_decay"), float("inf")),
        (("trainer", "gradient_clip"), float("inf")),
        (("preprocessing", "split", "fractions"), [0.7, float("nan"), 0.15]),
    ],
)
def test_inf_and_nan_are_refused_where_a_config_takes_a_number(path: tuple[str, ...], value: object) -> None:
    config = make_config()
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=r"finite number"):
        load_config(config)


def test_yaml_inf_is_refused_with_the_key_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "input_features: [{name: a, type: number}]\noutput_features: [{name: y, type: number}]\n"
        "trainer: {optimizer: {lr: .inf}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"trainer\.optimizer\.lr.*finite"):
        load_config(path)


# -- training that diverges ---------------------------------------------------------------------------------


def test_a_diverging_round_stops_the_run_naming_epoch_steps_and_causes() -> None:
    import torch

    from deepwright.training.loop import check_finite
    from deepwright.training.state import TrainState

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    state = TrainState(model=model, optimizer=optimizer, schedule=None, generator=torch.Generator())
    state.step = 6
    check_finite(state, {"epoch": 1, "step": 6, "train_loss": 0.5, "lr": 1.0})  # finite: nothing happens
    with pytest.raises(ConfigError) as caught:
        check_finite(state, {"epoch": 2, "step": 6, "train_loss": float("nan"), "lr": 1e30})
    message = str(caught.value)
    assert "epoch 2" in message and "steps 1-6" in message and "train_loss is nan" in message
    assert "learning rate" in message and "lr 1e+30" in message and "fp16/bf16" in message
    with torch.no_grad():
        model.weight[0, 0] = float("inf")  # weights broken by the last step, before any loss could show it
    with pytest.raises(ConfigError, match="the weights hold inf or NaN"):
        check_finite(state, {"epoch": 2, "step": 6, "train_loss": 0.5, "lr": 1.0})


def test_train_with_a_huge_learning_rate_exits_2_and_saves_no_model(
    cli: Callable[..., Outcome], tmp_path: Path
) -> None:
    """The reported case: `lr` 1e30 (or .inf before the config refused it) trained to NaN and exited 0."""
    write_frame(make_frame(80), tmp_path / "people.csv")
    config = make_config(epochs=3)
    config["trainer"]["optimizer"]["lr"] = 1e30
    write_config(tmp_path, config)
    completed = cli(
        "train", "--config", "config.yaml", "--data", "people.csv", "--output", "runs", "--quiet", cwd=tmp_path
    )
    message = assert_user_error(completed)
    assert "training diverged in epoch 1" in message and "learning rate too large (lr 1e+30)" in message
    assert not list(tmp_path.glob("runs/*/model")) and not list(tmp_path.glob("runs/*/checkpoint*"))


# -- output that cannot be written ----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_umask_permissions_not_0600(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "out" / "a.csv") as temporary:
            temporary.write_text("x\n", encoding="utf-8")
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "a.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_folder_in_the_way_or_a_file_on_the_path_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("keep", encoding="utf-8")
    for target, reason in ((tmp_path / "folder", "a folder of that name"), (tmp_path / "file" / "x.csv", "a file")):
        with pytest.raises(DataError, match=reason), atomic_path(target) as temporary:
            temporary.write_text("new", encoding="utf-8")
    assert (tmp_path / "file").read_text(encoding="utf-8") == "keep"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "folder"]  # no temporary left
    assert list((tmp_path / "folder").iterdir()) == []


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "disk is full"), (errno.EFBIG, "file-size limit")])
def test_a_write_that_fails_for_lack_of_space_leaves_no_partial_file(tmp_path: Path, code: int, reason: str) -> None:
    target = tmp_path / "predictions.csv"
    target.write_text("the previous predictions\n", encoding="utf-8")
    with (
        pytest.raises(DataError, match=reason),
        atomic_path(target) as temporary,
        open(temporary, "w", encoding="utf-8") as handle,
    ):
        handle.write("half of")
        raise OSError(code, os.strerror(code))
    assert target.read_text(encoding="utf-8") == "the previous predictions\n"
    assert [path.name for path in tmp_path.iterdir()] == ["predictions.csv"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_devices_are_written_in_place_never_replaced_by_a_file(tmp_path: Path) -> None:
    """`--output /dev/null` (or /dev/stdout) must not rename a regular file over the device; /dev/full is a real
    full disk: every write fails with ENOSPC."""
    import stat

    with atomic_path("/dev/null") as temporary:
        temporary.write_text("predictions\n", encoding="utf-8")
    with (
        pytest.raises(DataError, match="/dev/full: cannot be written: the disk is full"),
        atomic_path("/dev/full") as t,
    ):
        t.write_text("predictions\n", encoding="utf-8")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_link_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("old\n", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to("real.csv")
    with atomic_path(tmp_path / "link.csv") as temporary:
        temporary.write_text("new\n", encoding="utf-8")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text(encoding="utf-8") == "new\n"


def test_a_folder_that_refuses_new_files_is_reported_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: object, *args: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(DataError, match="--output cannot be written: permission denied"):
        check_writable(tmp_path / "runs", folder=True)
    with pytest.raises(DataError, match="read-only file system"):
        raise write_problem(OSError(errno.EROFS, "Read-only file system"), tmp_path / "a.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(DataError, match="permission denied"):
            check_writable(folder, folder=True)
    finally:
        folder.chmod(0o755)


def test_check_writable_wants_a_folder_or_a_file_as_told(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="--output needs a folder, and this is a file"):
        check_writable(tmp_path / "file", folder=True)
    with pytest.raises(DataError, match="--output needs a file, and this is a folder"):
        check_writable(tmp_path, folder=False)
    check_writable(tmp_path / "new" / "runs", folder=True)  # not created: a refused command leaves nothing
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_an_error_about_another_file_is_not_called_a_write_failure(tmp_path: Path) -> None:
    error = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "input.csv"))
    assert write_problem(error, tmp_path / "out.csv") is None
