"""Compiled inference: estimators converted to ONNX in the training process, checked against
the estimator there and again at load, and served by ONNX Runtime on one thread. It owns the
conversion per type, the check at the model's own split values, and which runtime answers
which rows of a loaded model."""
