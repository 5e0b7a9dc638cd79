"""marsvision.inference: prediction on images and folders (resized or tiled), ONNX export and the ONNX predictor.

Entry points: :func:`marsvision.inference.predict.predict_paths` (``marsvision predict``) and
:func:`marsvision.inference.export.export_onnx` (``marsvision export``). Nothing is imported here so that the
ONNX path can be loaded without pulling in the PyTorch-side modules of this package.
"""
