"""The service's Prometheus metrics, named once, in one registry per app.

Counters and histograms are updated where things happen (a request, a training's end, a
predict call). Gauges of state that another object owns (slots, loaded models) are read from
that object at scrape time, so they can't drift from it. Every label value comes from a
closed set the server validated: route templates, canonical model types, outcomes, limits.

`NoMetrics` has the same methods and does nothing (METRICS=false).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "model_server"
FRESH_RENDERS_PER_SECOND = 5
# Rows in one predict call: 1 (a lone request) up to MAX_BATCH_ROWS and beyond for big posts.
BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
TRAINING_SECONDS_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# A 1-row prediction takes well under the default buckets' first bound: they would tell
# nothing of its p99 (see docs/performance-history.md, Figures behind the code).
REQUEST_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
)  # fmt: skip


@dataclass(frozen=True)
class Traffic:
    """Totals since start: requests answered, and /predict's latency histogram (cumulative
    counts per bucket upper bound), as the dashboard turns them into a rate and a p99."""

    requests: float
    predict_buckets: tuple[tuple[float, float], ...]


class CapacityView(Protocol):
    """What the scrape-time gauges read: the objects that own slots and loaded models."""

    def training_slots(self) -> int: ...
    def training_slots_busy(self) -> int: ...
    def models_loaded(self) -> int: ...
    def models_loaded_max(self) -> int: ...
    def untrusted_versions(self) -> int: ...


class _CapacityCollector(Collector):
    def __init__(self, view: Callable[[], CapacityView | None]) -> None:
        self._view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self._view()
        if view is None:  # before the lifespan has built the parts
            return
        for name, documentation, read in (
            ("training_slots", "Training slots that exist now", view.training_slots),
            ("training_slots_busy", "Training slots in use", view.training_slots_busy),
            ("models_loaded", "Models loaded for inference", view.models_loaded),
            ("models_loaded_max", "MAX_INFERENCE_MODELS", view.models_loaded_max),
            (
                "untrusted_model_versions",
                "Model versions whose files are not signed with the server's key",
                view.untrusted_versions,
            ),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=read())


class Metrics:
    def __init__(self, capacity: Callable[[], CapacityView | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        counter, histogram = self._counter, self._histogram
        self._requests = counter(
            "http_requests", "HTTP requests answered", "method", "route", "status"
        )
        self._request_seconds = histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer",
            REQUEST_SECONDS_BUCKETS, "method", "route",
        )  # fmt: skip
        self._trainings = counter(
            "trainings",
            "Trainings by how they ended (rejected: no free slot)",
            "model_type",
            "outcome",
        )
        self._limit_hits = counter("training_limit_hits", "Trainings stopped by a limit", "limit")
        self._training_seconds = histogram(
            "training_duration_seconds", "Duration of trainings that succeeded",
            TRAINING_SECONDS_BUCKETS, "model_type",
        )  # fmt: skip
        self._prediction_rows = counter("prediction_rows", "Rows predicted", "model_type")
        self._unseen_levels = counter(
            "unseen_levels",
            "Categorical cells whose level the model never saw in training (answered as missing)",
            "name",
            "version",
        )
        self._batch_rows = histogram(
            "prediction_batch_rows",
            "Rows in one predict call of an estimator (micro-batched or inline)",
            BATCH_ROW_BUCKETS,
        )
        self._swaps = counter(
            "version_moves",
            "Moves of a current pointer or alias (swapped: of a loaded version; moved: nothing "
            "loaded to swap; failed: the new version did not load or the pointers not write)",
            "outcome",
        )
        self._untrusted_loads = counter(
            "untrusted_loads_refused",
            "Loads refused because the version's files are not signed with the server's key",
        )
        self.registry.register(_CapacityCollector(capacity))
        self._window_started, self._renders, self._rendered = 0.0, 0, b""
        # The children of labelled metrics, found once: `labels()` takes a lock each time.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def add_collector(self, collector: Collector) -> None:
        """Gauges another part reads at scrape time (a replica's following)."""
        self.registry.register(collector)

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(f"{PREFIX}_{name}", documentation, labels, registry=self.registry)

    def _histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...], *labels: str
    ) -> Histogram:
        return Histogram(
            f"{PREFIX}_{name}", documentation, labels, buckets=buckets, registry=self.registry
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self._requests.labels(method, route, str(status)),
                self._request_seconds.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def training_ended(self, model_type: str, outcome: str, seconds: float | None = None) -> None:
        self._trainings.labels(model_type, outcome).inc()
        if seconds is not None:
            self._training_seconds.labels(model_type).observe(seconds)

    def limit_hit(self, limit: str) -> None:
        self._limit_hits.labels(limit).inc()

    def swap(self, outcome: str) -> None:
        self._swaps.labels(outcome).inc()

    def untrusted_load_refused(self) -> None:
        self._untrusted_loads.inc()

    def prediction_counter(self, model_type: str) -> Callable[[int], None]:
        """For one loaded model: a function to call with the rows of each predict call."""
        rows = self._prediction_rows.labels(model_type)
        batch = self._batch_rows

        def count(n: int) -> None:
            rows.inc(n)
            batch.observe(n)

        return count

    def unseen_counter(self, name: str, version: int) -> Callable[[int], None]:
        """For one loaded version: a function to call with the unseen levels of a request.
        Its series appears with the first unseen level: a model that never meets one (every
        model of numbers) puts no name into /metrics."""
        family = self._unseen_levels

        def count(cells: int) -> None:
            family.labels(name, str(version)).inc(cells)

        return count

    def exposition(self) -> bytes:
        """The registry in Prometheus text. /metrics is open to anyone, and rendering takes
        the event loop a millisecond or more: past FRESH_RENDERS_PER_SECOND scrapes in one
        second, the last rendering (at most a second old) is answered."""
        now = time.monotonic()
        if now - self._window_started >= 1.0:
            self._window_started, self._renders = now, 0
        if self._renders >= FRESH_RENDERS_PER_SECOND and self._rendered:
            return self._rendered
        self._renders += 1
        self._rendered = generate_latest(self.registry)
        return self._rendered

    def traffic(self) -> Traffic:
        """Read from these two metrics only (not the whole registry: its scrape-time gauges
        look at the model files)."""
        requests = sum(
            sample.value
            for family in self._requests.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
        buckets: dict[float, float] = {}
        for family in self._request_seconds.collect():
            for sample in family.samples:
                if sample.name.endswith("_bucket") and sample.labels.get("route") == "/predict":
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return Traffic(requests, tuple(sorted(buckets.items())))


class NoMetrics(Metrics):
    """METRICS=false: every update is a no-op and nothing is registered."""

    def __init__(self) -> None:
        pass

    def add_collector(self, collector: Collector) -> None:
        pass

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def training_ended(self, model_type: str, outcome: str, seconds: float | None = None) -> None:
        pass

    def limit_hit(self, limit: str) -> None:
        pass

    def swap(self, outcome: str) -> None:
        pass

    def untrusted_load_refused(self) -> None:
        pass

    def prediction_counter(self, model_type: str) -> Callable[[int], None]:
        return _ignore

    def unseen_counter(self, name: str, version: int) -> Callable[[int], None]:
        return _ignore

    def exposition(self) -> bytes:
        return b""

    def traffic(self) -> Traffic:
        return Traffic(0.0, ())


def _ignore(rows: int) -> None:
    pass
