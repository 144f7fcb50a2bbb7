"""What /metrics tells of the explanations: the queue, and what became of each one."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server.explain.explainer import Explainer
from server.metrics import PREFIX

OUTCOMES = ("computed", "refused", "busy", "timed_out", "crashed", "abandoned")


class ExplainerCollector(Collector):
    def __init__(self, explainer: Explainer) -> None:
        self._explainer = explainer

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            f"{PREFIX}_explanations_queued",
            "Explanations running or waiting their turn (MAX_EXPLAIN_QUEUE at most)",
            value=self._explainer.queued,
        )
        total = CounterMetricFamily(
            f"{PREFIX}_explanations",
            "Explanations asked for, by outcome (abandoned: its client left first)",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            total.add_metric([outcome], self._explainer.outcomes[outcome])
        yield total
