"""From the deploy form to artifacts: one module per edge, a registry, gate-then-publish.

- :mod:`.registry`: the converter shape ``convert(ctx, target) -> Artifact`` and the
  (format, precision) → converter registry.
- Edges: :mod:`.onnx`, :mod:`.tflite`, :mod:`.onnx_int8`, :mod:`.tflite_int8`, :mod:`.coreml`.
- Building blocks the edges share: :mod:`.torch_to_onnx`, :mod:`.onnx_rewrite`,
  :mod:`.onnx_to_tflite`, :mod:`.torch_to_coreml`, :mod:`.calibration`, :mod:`.int8_form`,
  :mod:`.int8_equalize`, :mod:`.quantize_onnx`, :mod:`.quantize_tflite`.
- :mod:`.publish`: ``export`` itself — convert, gate, atomic rename, manifest.
"""
