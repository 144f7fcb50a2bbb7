"""Compiled inference: estimators converted to ONNX in the training process, served by
ONNX Runtime on one thread once a check at load shows they agree with the estimator.

- `convert`: estimator -> ONNX bytes, per model type (runs where the model is trained);
- `runtimes`: the native estimator and an ONNX Runtime session behind one interface;
- `verify`: the check at load, on rows kept from the training data.
"""
