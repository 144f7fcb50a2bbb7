"""What a replica tells of its following: the body of /health and the /metrics gauges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from server.metrics import PREFIX
from server.replication.follower import FollowState


def health(state: FollowState, primary_url: str | None) -> dict[str, Any]:
    problems = [
        {"name": name, "version": version, "error": error}
        for (name, version), (_, error) in sorted(state.problems.items())
    ]
    following: dict[str, Any] = {
        "generation": state.applied.generation,
        "store_generation": state.seen.generation,
        "behind_seconds": round(state.behind_seconds(), 3),
        "checked_at": datetime.fromtimestamp(state.checked_at, UTC).isoformat(
            timespec="milliseconds"
        ),
        "problems": problems,
    }
    if state.set_problem is not None:
        following["set_problem"] = state.set_problem
    status = "ok" if state.ready() else "unready"
    answer: dict[str, Any] = {"status": status, "role": "replica", "following": following}
    if primary_url:
        answer["primary_url"] = primary_url
    return answer


class FollowCollector(Collector):
    def __init__(self, state: FollowState) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._state
        for name, documentation, value in (
            ("replica_generation", "The primary's serving set this replica serves",
             state.applied.generation),
            ("replica_store_generation", "The newest serving set this replica has read",
             state.seen.generation),
            ("replica_behind_seconds", "Seconds since the oldest change it does not serve yet",
             state.behind_seconds()),
            ("replica_set_unreadable", "1 while the serving set can't be read or verified",
             int(state.set_problem is not None)),
        ):  # fmt: skip
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
        unfollowed = GaugeMetricFamily(
            f"{PREFIX}_replica_unfollowed_version",
            "A version the primary serves and this replica can't (why: /health)",
            labels=["name", "version", "reason"],
        )
        for (name, version), (kind, _) in sorted(state.problems.items()):
            unfollowed.add_metric([name, str(version), kind], 1)
        yield unfollowed
