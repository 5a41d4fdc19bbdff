package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** Manifests the demo must refuse, each with a message that says why. */
class ModelManifestTest {
    private fun manifest(input: String, output: String, extra: String = ""): String =
        """{"format": "tflite", "precision": "int8", $extra "inputs": [$input], "outputs": [$output]}"""

    private val goodIn = """{"name": "image", "shape": [1, 256, 192, 3], "dtype": "uint8", "layout": "NHWC", "quantization": null}"""
    private val goodOut = """{"name": "foreground", "shape": [1, 256, 192, 1], "dtype": "float32", "quantization": null}"""

    private fun refused(text: String, fragment: String) {
        try {
            ModelManifest.parse(text)
            fail("accepted a manifest that should fail with '$fragment'")
        } catch (e: ManifestException) {
            assertTrue("'${e.message}' should mention '$fragment'", e.message!!.contains(fragment))
        }
    }

    @Test
    fun readsSizesFromTheManifestNotConstants() {
        val m = ModelManifest.parse(manifest(goodIn, goodOut))
        assertEquals(256, m.input.height)
        assertEquals(192, m.input.width)
        assertEquals(256, m.output.height)
        assertEquals(192, m.output.width)
        assertEquals(DType.UINT8, m.input.dtype)
        assertEquals(256 * 192 * 3, m.input.spec.byteSize)
        assertEquals(256 * 192 * 4, m.output.spec.byteSize)
    }

    @Test
    fun int8WithQuantizationAndListValued() {
        val inp = """{"name": "image", "shape": [1, 224, 224, 3], "dtype": "int8", "quantization": {"scale": [1.0], "zero_point": [-128]}}"""
        val out = """{"name": "foreground", "shape": [1, 224, 224, 1], "dtype": "int8", "quantization": {"scale": 0.00390625, "zero_point": -128}}"""
        val m = ModelManifest.parse(manifest(inp, out))
        assertEquals(Quantization(1f, -128), m.input.quantization)
        assertEquals("NHWC", m.input.layout)
        assertEquals(0f, m.output.quantization!!.dequantize(-128), 0f)
        assertEquals(255f / 256f, m.output.quantization!!.dequantize(127), 0f)
    }

    @Test
    fun refusals() {
        refused("[1]", "not a JSON object")
        refused("{", "not valid JSON")
        refused("""{"inputs": []}""", "no 'outputs'")
        refused(manifest(goodIn, goodOut.replace("foreground", "logits")), "no output named 'foreground'")
        refused(manifest(goodIn, goodOut, """"options": {"io": "raw"},"""), "--io raw")
        refused(manifest(goodIn.replace("\"uint8\"", "\"int8\""), goodOut), "int8 without quantization")
        refused(manifest(goodIn, goodOut.replace("float32", "uint8")), "without quantization")
        refused(manifest(goodIn.replace("[1, 256, 192, 3]", "[1, 256, 192, 4]"), goodOut), "expected an RGB image")
        refused(manifest(goodIn.replace("[1, 256, 192, 3]", "[-1, 256, 192, 3]"), goodOut), "non-static shape")
        refused(manifest(goodIn, goodOut.replace("float32", "bool")), "cannot feed")
        refused(manifest(goodIn, goodOut.replace("[1, 256, 192, 1]", "[1, 256, 192, 2]")), "one probability channel")
        refused(manifest(goodIn, goodOut.replace("\"quantization\": null", "\"quantization\": {\"scale\": 0, \"zero_point\": 0}")
            .replace("float32", "uint8")), "not positive")
        refused(manifest("$goodIn, $goodIn", goodOut), "2 inputs")
    }

    @Test
    fun quantizeRoundsHalfToEvenAndClamps() {
        val q = Quantization(2f, 3)
        assertEquals(3, q.quantize(1f, DType.UINT8)) // rint(0.5) = 0
        assertEquals(5, q.quantize(3f, DType.UINT8)) // rint(1.5) = 2
        assertEquals(5, q.quantize(5f, DType.UINT8)) // rint(2.5) = 2
        assertEquals(127, Quantization(1f, -128).quantize(300f, DType.INT8))
        assertEquals(-128, Quantization(1f, -128).quantize(-7f, DType.INT8))
        assertEquals(0, Quantization(1f, 0).quantize(-7f, DType.UINT8))
    }
}
