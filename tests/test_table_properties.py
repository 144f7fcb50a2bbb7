"""The model's answer never depends on the request's packaging (issue 38), over many small
generated tables with text columns, for every type.

Each example draws a table (text columns with gaps, spaces and case, a number with gaps, a
column of whole numbers declared categorical), learns its columns and trains it with the
server's own code (`labelled`, `fit_model`), saves and loads it as the server does, and then
answers rows holding seen, unseen and missing levels packaged every way a request can be: a
JSON `X` whole, row by row, shuffled and among many others, records with their keys in another order, CSV, and
Parquet with dictionary strings in an order of their own. Every packaging must give the same
labels and the same probabilities, to the bit.

`TABLE_EXAMPLES` sets the tables per type (CI: 25, the same ones every run).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.algorithms import resolve
from server.inference.loaded import LoadedModel, read_model
from server.ingest.features import MatrixFeatures, RecordFeatures, TableFeatures
from server.ingest.inputs import FitInput
from server.ingest.tables import read_table
from server.ml.progress import NoProgress
from server.schemas import FitConfig
from server.service.fitting import labelled
from server.store.files import ModelStore
from server.tables.raw import from_rows
from server.training.fit import fit_model
from server.training.request import TrainingRequest
from tests.helpers import KEY, MODEL_TYPES

EXAMPLES = int(os.environ.get("TABLE_EXAMPLES", "25"))
WORDS = ["red", "Red", " blue", "green ", "teal", "x y"]
COLUMNS = ["colour", "size", "weight", "code"]


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(st.integers(12, 40))
    text = st.one_of(st.none(), st.sampled_from(WORDS))
    colour = draw(st.lists(text, min_size=rows, max_size=rows))
    colour[0] = draw(st.sampled_from(WORDS))  # a text column has text
    size = draw(st.lists(st.sampled_from(["S", "M", "L", None]), min_size=rows, max_size=rows))
    weight = draw(
        st.lists(
            st.one_of(st.none(), st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 3))),
            min_size=rows,
            max_size=rows,
        )
    )
    code = draw(st.lists(st.sampled_from([415, 510, 408]), min_size=rows, max_size=rows))
    y = draw(st.lists(st.sampled_from(["no", "yes", "maybe"]), min_size=rows, max_size=rows))
    if len(set(y)) < 2:
        y[0], y[1] = "no", "yes"
    asked = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.sampled_from([*WORDS, "unseen", " red "])),
                st.sampled_from(["S", "M", "XL", None]),
                st.one_of(st.none(), st.floats(-2e4, 2e4, allow_nan=False)),
                st.sampled_from([415, 510, 999, None]),
            ),
            min_size=2,
            max_size=8,
        )
    )
    return {
        "rows": [list(row) for row in zip(colour, size, weight, code, strict=True)],
        "y": y,
        "asked": [list(row) for row in asked],
        "order": draw(st.permutations(range(len(asked)))),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore(Path(tmp_path_factory.mktemp("table-properties")), KEY)


def train(store: ModelStore, model_type: str, table: dict[str, Any], name: str) -> LoadedModel:
    config = FitConfig.model_validate(
        {"name": name, "model_type": model_type, "categorical_features": ["code"]}
    )
    fit = FitInput(config=config, raw=from_rows(table["rows"]), y=table["y"], feature_names=COLUMNS)
    learned = labelled(fit, None, 0, max_categories=100)
    algorithm = resolve(model_type)
    small = {"iterations": 10} if model_type == "CatBoostClassifier" else {"n_estimators": 5}
    request = TrainingRequest(
        name=name,
        model_type=model_type,
        hyperparameters=algorithm.effective_hyperparameters(
            {} if model_type == "LogisticRegression" else small
        ),
        X=learned.X,
        y_encoded=learned.y_encoded,
        classes=learned.classes,
        feature_names=COLUMNS,
        columns=learned.columns,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny tables: libraries warn of them
        fitted = fit_model(request, NoProgress())
    store.save(name, 1, fitted.bundle, fitted.metadata)
    return read_model(store, name, 1)


def answer(model: LoadedModel, features: Any) -> tuple[list[Any], np.ndarray]:
    encoded = features.encoded_for(model.name, model.model_columns)
    model.check_input(encoded.X)
    result = model.predict(encoded.X, True)
    return result["predictions"], np.asarray(result["probabilities"])


def file_table(columns: dict[str, list[Any]], parquet: bool) -> TableFeatures:
    if parquet:  # text as dictionaries in an order of their own
        arrays = {}
        for name, values in columns.items():
            if name in ("colour", "size"):
                levels = sorted({v for v in values if v is not None}, reverse=True) or ["?"]
                indices = [None if v is None else levels.index(v) for v in values]
                arrays[name] = pa.DictionaryArray.from_arrays(
                    pa.array(indices, pa.int32()), pa.array(levels)
                )
            else:
                arrays[name] = pa.array(values, pa.float64() if name == "weight" else pa.int64())
        buffer = io.BytesIO()
        pq.write_table(pa.table(arrays), buffer)
        data = buffer.getvalue()
    else:
        names = list(columns)
        lines = [",".join(names)]
        for i in range(len(columns[names[0]])):
            lines.append(
                ",".join("" if columns[n][i] is None else str(columns[n][i]) for n in names)
            )
        data = ("\n".join(lines) + "\n").encode()
    return TableFeatures(read_table(io.BytesIO(data)))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables())
def test_packaging_never_changes_an_answer(
    store: ModelStore, model_type: str, table: dict[str, Any]
) -> None:
    name = f"{model_type[:5].lower()}-{len(store.names())}"
    model = train(store, model_type, table, name)
    asked, order = table["asked"], table["order"]
    labels, expected = answer(model, MatrixFeatures(None, from_rows(asked)))

    columns = {name: [row[i] for row in asked] for i, name in enumerate(COLUMNS)}
    reversed_columns = {name: columns[name] for name in reversed(COLUMNS)}
    records = [{k: reversed_columns[k][i] for k in reversed_columns} for i in range(len(asked))]
    shuffled_labels, shuffled = answer(
        model, MatrixFeatures(None, from_rows([asked[i] for i in order]))
    )
    unshuffle = np.argsort(order)
    packagings = {
        "records": answer(model, RecordFeatures(records)),
        "csv": answer(model, file_table(reversed_columns, parquet=False)),
        "parquet": answer(model, file_table(columns, parquet=True)),
        "shuffled": ([shuffled_labels[i] for i in unshuffle], shuffled[unshuffle]),
    }
    many_labels, many = answer(model, MatrixFeatures(None, from_rows(asked * 40)))
    packagings["among many"] = (many_labels[: len(asked)], many[: len(asked)])
    alone = [answer(model, MatrixFeatures(None, from_rows([row]))) for row in asked]
    packagings["one row at a time"] = (
        [label for row_labels, _ in alone for label in row_labels],
        np.vstack([probabilities for _, probabilities in alone]),
    )
    for packaging, (got_labels, got) in packagings.items():
        assert got_labels == labels, packaging
        assert np.array_equal(got, expected), packaging
