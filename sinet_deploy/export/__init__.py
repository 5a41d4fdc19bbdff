"""Converters: one module per edge, each one public function ``(source, config) -> artifact``.

- :mod:`.torch_to_onnx`: PyTorch deploy form → ONNX.
- :mod:`.onnx_to_tflite`: ONNX → TFLite (onnx2tf, offline, in a child process).
- :mod:`.pipeline`: the ``export`` orchestration and the (format, precision) → converter
  registry that other converters (CoreML, full-integer int8) plug into.
"""
