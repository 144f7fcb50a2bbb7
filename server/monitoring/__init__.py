"""Monitoring (docs/API.md, v5): what a model meets in production against what it was
trained on. Its first part is the reference profile every fit keeps (`profile`)."""
