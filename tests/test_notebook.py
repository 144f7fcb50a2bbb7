"""notebooks/tour.ipynb runs, against a real server, as a reader runs it: every cell, in
order, with no error; and it is stored without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.helpers import models_in
from tests.servers import PROJECT_ROOT, uvicorn_server

NOTEBOOK = PROJECT_ROOT / "notebooks" / "tour.ipynb"


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_tour_runs_against_a_real_server(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with uvicorn_server(tmp_path / "models", training_cores=3) as (url, _):
        os.environ["MODEL_SERVER_URL"] = url  # the kernel inherits it
        try:
            NotebookClient(
                notebook,
                timeout=300,
                kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOK.parent)}},
            ).execute()
        finally:
            del os.environ["MODEL_SERVER_URL"]
        assert [name for name in models_in(tmp_path / "models") if not name.startswith(".")] == []
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    text = "".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for output in outputs
    )
    for model_type in (
        "LogisticRegression",
        "RandomForestClassifier",
        "XGBClassifier",
        "LGBMClassifier",
        "CatBoostClassifier",
    ):
        assert f"{model_type}" in text and "roc_auc" in text
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the plot
