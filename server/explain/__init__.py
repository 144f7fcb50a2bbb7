"""Explanations of a loaded version (`POST /explain`): the operation, and the process of its
own that computes them with server.ml.explanations."""
