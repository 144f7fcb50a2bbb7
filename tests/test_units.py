"""Unit tests of the parts that need no server: names and files, algorithms, settings."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from server.algorithms import resolve
from server.config import Settings
from server.errors import BrokenModel, InvalidInput, ModelNotFound, UntrustedModel
from server.ingest import as_matrix, gc_paused
from server.store import recovery
from server.store.files import ModelStore
from server.store.layout import check_name
from server.trust.command import vouch
from tests.helpers import KEY, files_under, models_in

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# -- names and files -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "rf1", "A.b-c_d", "9" * 64])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "a\\b", "-a", "x" * 65, "a b", "é"])
def test_invalid_names_are_refused_before_any_path_is_built(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        ModelStore(tmp_path, KEY).model_path(name, 1)


BUNDLE = {"estimator": [1, 2], "classes": [0, 1], "model_type": "X", "n_features": 2}


def test_save_writes_model_metadata_and_first_pointers_and_delete_removes_the_name(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path, KEY)
    recovery.prepare(store)
    metadata = store.save("m", 1, BUNDLE, {"name": "m"})
    assert metadata["size_bytes"] == (tmp_path / "m" / "1.joblib").stat().st_size > 0
    assert store.describe("m", 1) == metadata
    assert store.load("m", 1) == BUNDLE
    assert files_under(tmp_path) == ["m/1.joblib", "m/1.json", "m/pointers.json"]
    assert store.read_pointers("m").current == 1
    store.save("m", 2, BUNDLE, {"name": "m"})  # a new version does not move the pointer
    assert store.read_pointers("m").current == 1
    assert store.versions("m") == [1, 2]
    store.keep_numbers("m")
    store.delete("m")
    assert models_in(tmp_path) == []
    # A name trained again after its removal never gets an old number (issue 37, item 2).
    assert store.next_version("m", None) == 3
    with pytest.raises(ModelNotFound):
        store.keep_numbers("m")


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, KEY)

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError):
        store.save("m", 1, {"estimator": Unpicklable()}, {"name": "m"})
    assert models_in(tmp_path) == []


def test_damaged_versions_are_described_as_broken_or_untrusted_and_never_hidden(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path, KEY)
    bundle = {"estimator": [1], "classes": [0, 1], "model_type": "X", "n_features": 1}
    for name in ("good", "garbage", "short", "lost", "meta"):
        store.save(name, 1, bundle, {"name": name, "status": "trained"})
    (tmp_path / "meta" / "1.json").write_text("{not json")
    garbage = tmp_path / "garbage" / "1.joblib"
    garbage.write_bytes(b"\x80" * garbage.stat().st_size)  # same size, not a pickle
    short = tmp_path / "short" / "1.joblib"
    short.write_bytes(short.read_bytes()[:10])
    (tmp_path / "lost" / "1.joblib").unlink()

    described = {name: store.describe(name, 1) for name in store.names()}
    assert sorted(described) == ["garbage", "good", "lost", "meta", "short"]
    assert described["good"]["status"] == "trained"
    assert described["meta"]["error"].startswith("model 'meta' has unreadable metadata")
    assert described["lost"]["error"] == "model 'lost' has lost its file 1.joblib"
    for name in ("garbage", "short"):  # the tag tells, without reading a byte as a pickle
        assert described[name]["status"] == "untrusted"
        assert "1.joblib was changed after the server wrote it" in described[name]["error"]

    assert store.load("good", 1) == bundle
    for name in ("garbage", "short"):
        with pytest.raises(UntrustedModel, match=f"model '{name}' version 1 is untrusted"):
            store.load(name, 1)
    for name in ("meta", "lost"):
        with pytest.raises(BrokenModel, match=f"model '{name}'"):
            store.load(name, 1)


def test_models_saved_by_v2_become_version_1_untrusted_until_signed(tmp_path: Path) -> None:
    # The v2 layout: NAME.joblib and NAME.json side by side, with no signature.
    (tmp_path / "models").mkdir()
    joblib.dump(BUNDLE, tmp_path / "models" / "old.joblib")
    (tmp_path / "models" / "old.json").write_text('{"name": "old", "model_type": "X"}')
    store = ModelStore(tmp_path / "models", KEY)
    recovery.prepare(store)
    assert files_under(store.root) == ["old/1.joblib", "old/1.json", "old/pointers.json"]
    assert store.describe("old", 1)["status"] == "untrusted"
    with pytest.raises(UntrustedModel, match="carries no signature"):
        store.load("old", 1)
    assert vouch(store, "old", 1) == "signed"
    assert store.load("old", 1) == BUNDLE
    assert store.read_metadata("old", 1)["model_type"] == "X"
    assert store.read_pointers("old").current == 1


def test_a_move_from_v2_interrupted_after_the_links_is_finished_at_the_next_start(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path, KEY)
    store.save("old", 1, BUNDLE, {"name": "old"})
    # As if the server died after linking and writing the pointers, before removing the
    # v2 names: both are there.
    os.link(tmp_path / "old" / "1.joblib", tmp_path / "old.joblib")
    os.link(tmp_path / "old" / "1.json", tmp_path / "old.json")
    recovery.prepare(store)
    assert files_under(tmp_path) == ["old/1.joblib", "old/1.json", "old/pointers.json"]
    # And after linking only (no pointers yet): the v2 files are still whole, and moved again.
    (tmp_path / "old" / "pointers.json").unlink()
    os.link(tmp_path / "old" / "1.joblib", tmp_path / "old.joblib")
    os.link(tmp_path / "old" / "1.json", tmp_path / "old.json")
    recovery.prepare(store)
    assert files_under(tmp_path) == ["old/1.joblib", "old/1.json", "old/pointers.json"]
    assert store.load("old", 1) == BUNDLE


def test_start_up_removes_half_writes_but_keeps_every_whole_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, KEY)
    store.save("kept", 1, BUNDLE, {"name": "kept"})
    store.save("kept", 2, BUNDLE, {"name": "kept"})
    (tmp_path / "kept" / "3.joblib").write_bytes(b"a version whose metadata never came")
    (tmp_path / "kept" / ".3.joblib.0123abcd.tmp").write_bytes(b"partial")
    (tmp_path / "first").mkdir()  # a first version written, its pointers never
    (tmp_path / "first" / "1.joblib").write_bytes(b"model")
    (tmp_path / "first" / "1.json").write_text("{}")
    (tmp_path / ".gone.0123.removing").mkdir()  # a remove interrupted
    (tmp_path / "lost+found").mkdir()  # not ours: left alone
    recovery.prepare(store)
    assert files_under(tmp_path) == [
        "kept/1.joblib",
        "kept/1.json",
        "kept/2.joblib",
        "kept/2.json",
        "kept/pointers.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "lost+found"]


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


def test_a_signing_key_that_cant_work_stops_start_up_with_one_line(tmp_path: Path) -> None:
    inside = {"MODELS_PATH": str(tmp_path / "m"), "MODEL_SIGNING_KEY_FILE": str(tmp_path / "m/k")}
    for env, says in (
        ({"MODEL_SIGNING_KEY": "too short"}, "MODEL_SIGNING_KEY must be at least 32 characters"),
        (inside, "is inside MODELS_PATH"),
    ):
        result = _start_with(env, tmp_path)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert says in line
    # Importing the app creates no file: the key is made (or read) when the server starts.
    assert _start_with({}, tmp_path).returncode == 0
    assert models_in(tmp_path) == []


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
        max(2, len(os.sched_getaffinity(0))),  # the cores the process may use
        2,
    )


# -- ingest -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "message"),
    [
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


@pytest.mark.parametrize("copies", [1, 10], ids=["few rows", "many rows"])
def test_as_matrix_reads_booleans_as_zero_and_one(copies: int) -> None:
    mixed = as_matrix([[True, 2.5], [False, None]] * copies)
    assert mixed.dtype == np.float64 and mixed[:2, 0].tolist() == [1.0, 0.0]
    only = as_matrix([[True, False]] * copies)
    assert only.dtype == np.float64 and only[0].tolist() == [1.0, 0.0]


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
    from server.ml.probabilities import well_formed

    exact = [0.1, 0.2, 0.7]  # sums to 1 within 1e-12 in double: left as it is
    drifted = [0.30000001, 0.7, -5.2e-08]  # a float32 sum's drift: clipped and rescaled
    answered = well_formed(np.array([exact, drifted]))
    assert answered[0].tolist() == exact
    assert answered[1].min() >= 0.0 and abs(answered[1].sum() - 1.0) <= 1e-15
    alone = np.array([exact])
    assert well_formed(alone) is alone  # nothing to do: no copy


def test_a_model_with_categorical_columns_refuses_what_is_not_a_cell_naming_the_column() -> None:
    from server.ingest.features import RecordFeatures
    from server.tables.columns import Column, Columns

    columns = Columns((Column("n"), Column("c", "categorical", ("a", "b"), (3, 4))), named=True)
    for cell, message in (
        ({"n": [1.0], "c": "a"}, "column 'n' must hold numbers or null, found list"),
        ({"n": 10**400, "c": "a"}, "column 'n' must hold only finite numbers"),
        ({"n": "x", "c": "a"}, "column 'n' is numeric in the model"),
        ({"n": 1.0, "c": {"a": 1}}, "column 'c' holds dict values"),
        ({"n": 1.0, "c": 2.5}, "column 'c' is categorical, and 2.5 is a number with a fraction"),
    ):
        with pytest.raises(InvalidInput) as refused:
            RecordFeatures([cell]).encoded_for("m", columns)
        assert refused.value.detail.startswith(message)
    answered = RecordFeatures([{"c": " b ", "n": True}, {"c": "z", "n": None}])
    encoded = answered.encoded_for("m", columns)
    assert np.array_equal(encoded.X, [[1.0, 1.0], [np.nan, np.nan]], equal_nan=True)
    assert encoded.unseen is not None and encoded.unseen.tolist() == [0, 1]


def test_a_fit_keeps_a_reference_profile_of_its_training_rows() -> None:
    from server.ingest.inputs import FitInput
    from server.ml.progress import NoProgress
    from server.schemas import FitConfig
    from server.service.fitting import labelled
    from server.tables.raw import from_rows
    from server.training.fit import fit_model
    from server.training.request import Holdout, TrainingRequest

    rng = np.random.default_rng(3)
    numbers = rng.normal(50, 10, 400).round(3)
    rows = [
        [None if i % 10 == 0 else float(v), ["a", "b", "c"][i % 3]] for i, v in enumerate(numbers)
    ]
    y = ["no" if i % 4 else "yes" for i in range(400)]
    config = FitConfig.model_validate({"name": "p", "model_type": "LogisticRegression"})
    table = labelled(FitInput(config, from_rows(rows), y, None), 0.25, 0, 100)
    request = TrainingRequest(
        name="p", model_type="LogisticRegression", hyperparameters={}, X=table.X,
        y_encoded=table.y_encoded, classes=table.classes, columns=table.columns,
        holdout=Holdout(0.25, 0), compile=False,
    )  # fmt: skip
    profile = fit_model(request, NoProgress()).metadata["profile"]
    assert profile["rows"] == 300  # the training part only
    numeric, categorical = profile["features"]
    assert numeric["kind"] == "numeric" and len(numeric["edges"]) == 9
    assert numeric["edges"] == sorted(set(numeric["edges"]))
    assert 0.08 < numeric["missing"] < 0.12
    assert abs(sum(numeric["shares"]) + numeric["missing"] - 1) < 1e-5
    assert all(0.07 < share < 0.11 for share in numeric["shares"])  # quantile bins
    assert categorical["kind"] == "categorical" and len(categorical["shares"]) == 3
    assert abs(sum(categorical["shares"]) - 1) < 1e-5 and categorical["missing"] == 0
    assert set(profile["classes"]) == {"no", "yes"}
    assert abs(profile["classes"]["yes"] - 0.25) < 0.02
