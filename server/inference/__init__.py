"""Inference: the models loaded to answer /predict and /evaluate. This package owns the
loaded set and its cap, how a loaded model predicts (its runtime, chosen at load, and the
micro-batching in front of it), what a predict call costs, and the memory given back after
an unload; `compiled/` owns the compiled copy and the check that it answers as the model."""
