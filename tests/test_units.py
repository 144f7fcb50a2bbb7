"""Unit tests of the parts that need no server: names and files, algorithms, settings."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server.algorithms import resolve
from server.config import Settings
from server.errors import BrokenModel, InvalidInput, ModelNotFound
from server.ingest import as_matrix, gc_paused
from server.store.files import ModelStore, check_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# -- names and files -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "rf1", "A.b-c_d", "9" * 64])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "a\\b", "-a", "x" * 65, "a b", "é"])
def test_invalid_names_are_refused_before_any_path_is_built(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        ModelStore(tmp_path).model_path(name)


def test_save_writes_model_then_metadata_and_delete_removes_both(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.prepare()
    bundle = {"estimator": [1, 2], "classes": [0, 1], "model_type": "X", "n_features": 2}
    metadata = store.save("m", bundle, {"name": "m"})
    assert metadata["size_bytes"] == (tmp_path / "m.joblib").stat().st_size > 0
    assert store.read_metadata("m") == metadata
    assert store.load("m") == bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "m.json"]
    store.delete("m")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ModelNotFound):
        store.delete("m")


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError):
        store.save("m", {"estimator": Unpicklable()}, {"name": "m"})
    assert list(tmp_path.iterdir()) == []


def test_damaged_models_are_described_as_broken_and_never_hidden(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    bundle = {"estimator": [1], "classes": [0, 1], "model_type": "X", "n_features": 1}
    for name in ("good", "garbage", "short", "lost"):
        store.save(name, bundle, {"name": name, "status": "trained"})
    (tmp_path / "meta.json").write_text("{not json")
    (tmp_path / "meta.joblib").write_bytes(b"whatever")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"\x80" * garbage.stat().st_size)  # same size, not a pickle
    short = tmp_path / "short.joblib"
    short.write_bytes(short.read_bytes()[:10])
    (tmp_path / "lost.joblib").unlink()

    described = {info["name"]: info for info in store.list_models()}
    assert sorted(described) == ["garbage", "good", "lost", "meta", "short"]
    assert described["good"]["status"] == "trained"
    assert described["garbage"]["status"] == "trained"  # only /load can tell
    assert described["meta"]["error"].startswith("model 'meta' has unreadable metadata")
    assert described["short"]["error"] == (
        "model 'short' has a model file of 10 bytes where "
        f"{described['short']['size_bytes']} were written"
    )
    assert described["lost"]["error"] == "model 'lost' has lost its model file"

    assert store.load("good") == bundle
    with pytest.raises(BrokenModel, match="model 'garbage' can't be loaded"):
        store.load("garbage")
    for name in ("meta", "short", "lost"):
        with pytest.raises(BrokenModel, match=f"model '{name}'"):
            store.load(name)


# -- algorithms -----------------------------------------------------------------------------
def test_resolve_is_case_insensitive_and_names_the_choices() -> None:
    assert resolve("xgbclassifier").name == "XGBClassifier"
    with pytest.raises(InvalidInput, match="expected one of LogisticRegression, "):
        resolve("SVC")


def test_unknown_hyperparameters_are_named() -> None:
    with pytest.raises(InvalidInput, match="for RandomForestClassifier: bogus, zzz"):
        resolve("RandomForestClassifier").effective_hyperparameters(
            {"zzz": 1, "bogus": 2, "max_depth": 3}
        )


@pytest.mark.parametrize(
    ("model_type", "requested", "expected"),
    [
        ("LogisticRegression", {"n_jobs": 4, "C": 2.0}, {"C": 2.0}),
        ("RandomForestClassifier", {"n_jobs": -1}, {"n_jobs": 1}),
        ("XGBClassifier", {"nthread": 8, "max_depth": 3}, {"max_depth": 3, "n_jobs": 1}),
        ("LGBMClassifier", {"num_threads": 8}, {"verbose": -1, "n_jobs": 1}),
        ("LGBMClassifier", {"verbose": 1}, {"verbose": 1, "n_jobs": 1}),
        (
            "CatBoostClassifier",
            {"thread_count": 8, "allow_writing_files": True, "depth": 4},
            {
                "depth": 4,
                "logging_level": "Silent",
                "allow_writing_files": False,
                "thread_count": 1,
            },
        ),
    ],
)
def test_effective_hyperparameters(model_type: str, requested: dict, expected: dict) -> None:
    assert resolve(model_type).effective_hyperparameters(requested) == expected


# -- settings -------------------------------------------------------------------------------
def _start_with(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MODELS_PATH", "TRAINING_CORES", "MAX_INFERENCE_MODELS"}
    }
    return subprocess.run(
        [sys.executable, "-c", "import server.main"],
        env={**clean, **env, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("TRAINING_CORES", "1", "greater than or equal to 2"),
        ("TRAINING_CORES", "many", "valid integer"),
        ("MAX_INFERENCE_MODELS", "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, rule: str
) -> None:
    result = _start_with({variable: value}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"invalid configuration: {variable}={value!r}")
    assert rule in lines[0]


def test_settings_come_from_dotenv_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "MODELS_PATH=from_file\nTRAINING_CORES=6\nMAX_INFERENCE_MODELS=5\n"
    )
    monkeypatch.chdir(tmp_path)
    for variable in ("MODELS_PATH", "TRAINING_CORES", "MAX_INFERENCE_MODELS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MAX_INFERENCE_MODELS", "7")
    settings = Settings()
    assert settings.models_path == Path("from_file")
    assert settings.training_slots == 5
    assert settings.max_inference_models == 7


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("MODELS_PATH", "TRAINING_CORES", "MAX_INFERENCE_MODELS"):
        monkeypatch.delenv(variable, raising=False)
    settings = Settings()
    assert (settings.models_path, settings.training_cores, settings.max_inference_models) == (
        Path("saved_models"),
        4,
        2,
    )


# -- ingest -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0.5, False]], "X must hold only numbers or null, found bool"),
        ([[True, 2.0]], "X must hold only numbers or null, found bool"),
        ([[1.0, "2"]], "X must hold only numbers or null, found str"),
        ([[None, "2"]], "X must hold only numbers or null, found str"),
        ([[1.0, [2.0]]], "X must hold only numbers or null, found list"),
        ([[1.0], [1.0, 2.0]], "X is ragged: its rows have [1, 2] features"),
        ([[]], "X has rows without features"),
        ([1.0, 2.0], "X must be a list of rows, each a list of numbers"),
        ([], "X must be a non-empty list of rows"),
        ([[1e308, 10**400]], "X must hold only finite numbers or null"),
    ],
)
@pytest.mark.parametrize("many", [False, True], ids=["few rows", "many rows"])
def test_as_matrix_refuses_what_the_schema_refuses(rows: list, message: str, many: bool) -> None:
    if many and rows and isinstance(rows[0], list):  # past SMALL_ROWS: the numpy paths
        rows = rows * 10
    with pytest.raises(InvalidInput) as refused:
        as_matrix(rows)
    assert refused.value.detail == message


@pytest.mark.parametrize("copies", [1, 10], ids=["few rows", "many rows"])
def test_as_matrix_reads_null_as_missing(copies: int) -> None:
    matrix = as_matrix([[1, None], [None, 2.5]] * copies)
    assert matrix.dtype == np.float64
    assert np.array_equal(matrix, np.array([[1.0, np.nan], [np.nan, 2.5]] * copies), equal_nan=True)


def test_as_matrix_keeps_integers_zeros_and_ones_as_floats() -> None:
    matrix = as_matrix([[0, 1], [1.0, 0.0], [2, -3.5]])
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[0.0, 1.0], [1.0, 0.0], [2.0, -3.5]]


def test_gc_pause_is_counted_and_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused:
        assert not gc.isenabled()
        with gc_paused:  # a second parse, as from another thread
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first is still running
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused:
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_well_formed_probabilities_rescale_only_the_rows_that_miss_one() -> None:
    from server.probabilities import well_formed

    exact = [0.1, 0.2, 0.7]  # sums to 1 within 1e-12 in double: left as it is
    drifted = [0.30000001, 0.7, -5.2e-08]  # a float32 sum's drift: clipped and rescaled
    answered = well_formed(np.array([exact, drifted]))
    assert answered[0].tolist() == exact
    assert answered[1].min() >= 0.0 and abs(answered[1].sum() - 1.0) <= 1e-15
    alone = np.array([exact])
    assert well_formed(alone) is alone  # nothing to do: no copy
