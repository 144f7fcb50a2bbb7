"""Monitoring (docs/monitoring.md): what a model meets in production against what it was
trained on. `monitor` is what the rest of the server asks; the modules beside it are its
parts (the capture setting, the writer, the files, feedback, the report, drift)."""
