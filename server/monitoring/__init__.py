"""Monitoring (docs/monitoring.md): what a model meets in production against what it was
trained on. `monitor` is what the rest of the server asks; the modules beside it are its
parts (the settings and their signed files, the writer and its lock and reserve, the
files, feedback, the report, drift, `from_capture`)."""
