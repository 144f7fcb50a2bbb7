"""Compiled inference: estimators converted to ONNX in the training process, checked against
the estimator there and again at load, and served by ONNX Runtime on one thread.

- `convert`: estimator -> ONNX bytes, per model type (runs where the model is trained);
- `forest`: a scikit-learn forest's graph, built from its trees' arrays;
- `runtimes`: the native estimator and an ONNX Runtime session behind one interface;
- `probes`: rows at the model's own split values, where the two could part;
- `verify`: the check, on kept training rows, rows with missing values and the probes;
- `choice`: which runtime answers which rows of a loaded model, and why.
"""
