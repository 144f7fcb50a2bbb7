"""Monitoring, the whole loop on a real table: `python -m client.monitoring`.

Trains a model on part of the Palmer penguins (shipped with the `palmerpenguins` package:
nothing is downloaded), turns capture on, and sends the other penguins to /predict: first as
the training rows were measured, then as a new field team records them (bill lengths in
centimetres, sex written `M`/`F`). Once the true species are known it posts them as
feedback, prints the drift and the live accuracy of each period, trains the next version on
the labelled captured rows of the second period, promotes it, and scores both versions side
by side on the new team's later rows, which neither trained on (a version is never scored
on its own training rows). Exit status 1 if the drift, the fall in accuracy or the better
version is not found.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from palmerpenguins import load_penguins

from client import cli
from client.report import table
from client.sync_client import ModelClient

NAME = "penguins-watch"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
BATCH = 5  # rows per /predict
WAIT_SECONDS = 30.0  # for captured rows to reach the files (CAPTURE_FLUSH_SECONDS: 2 s)


def penguins(seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The table as records (missing values as None), shuffled, split 55 / 45."""
    frame = load_penguins().sample(frac=1.0, random_state=seed).reset_index(drop=True)
    records = [
        {k: (None if v != v else v) for k, v in row.items()}  # NaN -> None
        for row in frame[["species", *FEATURES]].to_dict("records")
    ]
    cut = int(len(records) * 0.55)
    return records[:cut], records[cut:]


def new_team(record: dict[str, Any]) -> dict[str, Any]:
    """How the new field team writes a penguin down."""
    changed = dict(record)
    if changed["bill_length_mm"] is not None:
        changed["bill_length_mm"] = round(changed["bill_length_mm"] / 10, 2)  # centimetres
    changed["sex"] = {"male": "M", "female": "F"}.get(changed["sex"], changed["sex"])
    return changed


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def send(client: ModelClient, rows: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    """Predict every row (a key each, captured with it); key -> true species."""
    import pandas as pd  # only here: the client itself does not need pandas

    truth = {}
    for start in range(0, len(rows), BATCH):
        part = rows[start : start + BATCH]
        keys = [f"{prefix}{start + i}" for i in range(len(part))]
        frame = pd.DataFrame([{**{k: r[k] for k in FEATURES}, "penguin": key}
                              for r, key in zip(part, keys, strict=True)])  # fmt: skip
        client.predict(NAME, frame, key="penguin")
        truth.update({key: r["species"] for key, r in zip(keys, part, strict=True)})
    return truth


def wait_captured(client: ModelClient, rows: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        versions = client.monitoring(NAME)["versions"]
        if sum(v["captured"] for v in versions) >= rows:
            return
        time.sleep(0.2)
    raise SystemExit(f"the captured rows did not reach the files within {WAIT_SECONDS} s")


def label(client: ModelClient, truth: dict[str, str]) -> None:
    keys = list(truth)
    answer = client.feedback(NAME, [truth[k] for k in keys], keys=keys)
    print(f"sent {len(keys)} penguins to /predict, then their species: "
          f"{answer['matched']} rows labelled")  # fmt: skip


def period(client: ModelClient, since: str, until: str) -> dict[str, Any]:
    return client.monitoring(NAME, since, until)["versions"][0]


def demo(url: str, quick: bool) -> int:
    train, live = penguins()
    with ModelClient(url) as client:
        if NAME in {m["name"] for m in client.models()["models"]}:
            client.remove(NAME)
        import pandas as pd

        frame = pd.DataFrame(train)
        trees = 20 if quick else 200
        fitted = client.fit(
            NAME, "RandomForestClassifier", frame[FEATURES], frame["species"],
            hyperparameters={"n_estimators": trees}, validation_fraction=0.2,
        )  # fmt: skip
        client.load(NAME)
        client.set_capture(NAME)
        print(f"trained on {len(train)} penguins: validation accuracy "
              f"{fitted['validation']['scores']['accuracy']:.3f}; capture on")  # fmt: skip
        cut = len(live) * 2 // 3  # 100 rows or more: drift is judged from 100
        retrain_on, fresh = live[:cut], live[cut:]
        first_start = now()
        truth = send(client, live, "a")
        first_end = second_start = now()
        truth.update(send(client, [new_team(r) for r in retrain_on], "b"))
        second_end = now()
        wait_captured(client, len(live) + len(retrain_on))
        label(client, truth)
        before, after = (period(client, first_start, first_end),
                         period(client, second_start, second_end))  # fmt: skip
        print("\nDrift per feature (PSI; drifted at 0.2):")
        drifts = {p: {f["name"]: f for f in r["drift"]["features"]}
                  for p, r in (("as trained", before), ("new team", after))}  # fmt: skip
        rows = [[name, drifts["as trained"][name]["psi"], drifts["new team"][name]["psi"],
                 "yes" if drifts["new team"][name]["drifted"] else "no"]
                for name in drifts["new team"]]  # fmt: skip
        print(table(["feature", "as trained", "new team", "drifted"], rows))
        print("\nLive accuracy (labelled captured rows):")
        print(table(["period", "rows", "accuracy"], [
            ["as trained", before["labelled"], before["live"]["accuracy"]],
            ["new team", after["labelled"], after["live"]["accuracy"]],
        ]))  # fmt: skip
        retrained = client.fit_from_capture(
            NAME, "RandomForestClassifier", since=second_start, until=second_end,
            hyperparameters={"n_estimators": trees}, promote=True,
        )  # fmt: skip
        print(f"\nversion {retrained['version']} trained on the {retrained['n_samples']} "
              "labelled rows the new team sent, and promoted")  # fmt: skip
        third_start = now()  # rows neither version trained on: the fair comparison
        later = send(client, [new_team(r) for r in fresh], "c")
        third_end = now()
        wait_captured(client, len(live) + len(retrain_on) + len(fresh))
        label(client, later)
        first = fitted["version"]  # 1 on a fresh store; numbers are never given twice
        client.load(NAME, version=first)
        side = []
        for version in (first, retrained["version"]):
            scored = client.evaluate_capture(NAME, since=third_start, until=third_end,
                                             version=version)  # fmt: skip
            side.append([version, scored["n_samples"], scored["scores"]["accuracy"],
                         scored["scores"]["log_loss"]])  # fmt: skip
        print("\nBoth versions on the new team's later rows, which neither trained on:")
        print(table(["version", "rows", "accuracy", "log loss"], side))
        client.remove(NAME)
    drifted = {r[0] for r in rows if r[3] == "yes"}
    fell = after["live"]["accuracy"] < before["live"]["accuracy"] - 0.1
    better = side[1][2] > side[0][2]  # the new version, on rows neither trained on
    found = {"bill_length_mm", "sex"} <= drifted and fell and better
    print("\nOK: drift found, accuracy fell, the retrained version does better on the new rows"
          if found else "\nFAILED: the drift or the fall in accuracy was not found")  # fmt: skip
    return 0 if found else 1


def main() -> int:
    args = cli.parse(cli.parser(__doc__.splitlines()[0]))
    return demo(args.url, args.quick)


if __name__ == "__main__":
    cli.run(main)
