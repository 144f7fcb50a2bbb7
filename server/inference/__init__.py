"""Inference: the models loaded to answer /predict and /evaluate.

registry.py   Registry: the loaded models, under the MAX_INFERENCE_MODELS cap
loaded.py     LoadedModel: one model ready to predict, on the runtime chosen at load
batching.py   PredictionBatcher: cheap predictions inline, concurrent ones in micro-batches
compiled/     the compiled copy (ONNX): made after the fit, checked, and which batches it serves
timing.py     what one predict call costs (the inline estimate, the runtimes' crossing point)
memory.py     freed memory handed back to the system after an unload
"""
