"""Monitoring's series in /metrics: per name and version only, never per feature, so their
number stays bounded by the versions that were captured.

Captured and dropped rows are this process's counters (a replica counts its own). The drift
and live-accuracy gauges are those of the last report computed for the version (GET
/models/{name}/monitoring, which the dashboard's monitoring view asks for): a version whose
report was never asked for has none.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server.metrics import PREFIX
from server.monitoring.monitor import Monitor

LABELS = ["name", "version"]


class MonitoringCollector(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        capture = self._monitor.capture
        for metric, documentation, counts in (
            ("captured_rows", "Rows written to the capture files by this server", capture.captured),
            ("capture_dropped_rows", "Captured rows dropped (queue full, disk refused)",
             capture.dropped),
        ):  # fmt: skip
            family = CounterMetricFamily(f"{PREFIX}_{metric}", documentation, labels=LABELS)
            for (name, version), rows in sorted(counts.items()):
                family.add_metric([name, str(version)], rows)
            yield family
        gauges = {
            "drift_max_psi": ("Largest PSI of the version's features in its last report",
                              lambda r: r["drift"]["max_psi"]),
            "drifted_features": ("Features drifted in the version's last report",
                                 lambda r: r["drift"]["drifted"]),
            "live_accuracy": ("Accuracy on the labelled captured rows of the last report",
                              lambda r: (r["live"] or {}).get("accuracy")),
            "labelled_rows": ("Labelled captured rows in the version's last report",
                              lambda r: r["labelled"]),
        }  # fmt: skip
        reports = sorted(self._monitor.reports.items())
        for metric, (documentation, read) in gauges.items():
            gauge = GaugeMetricFamily(f"{PREFIX}_{metric}", documentation, labels=LABELS)
            for (name, version), report in reports:
                value = read(report)
                if value is not None:
                    gauge.add_metric([name, str(version)], float(value))
            yield gauge
