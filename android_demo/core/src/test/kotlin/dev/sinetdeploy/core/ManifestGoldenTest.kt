package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/**
 * Manifests written by the Python tool (`write_json_atomic`, or a real artifact's sidecar when
 * jvm-test.sh found one in the app's assets) read as Python reads them.
 */
@RunWith(Parameterized::class)
class ManifestGoldenTest(private val name: String, private val case: Map<String, Any?>) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun data(): List<Array<Any>> =
            Golden.cases("manifests").map { arrayOf<Any>(it["manifest"] as String, it) }
    }

    @Test
    fun fieldsMatchPython() {
        val m = Golden.manifest(case["manifest"])
        val e = case["expected"] as Map<*, *>
        assertEquals(Golden.int(e["input_height"]), m.input.height)
        assertEquals(Golden.int(e["input_width"]), m.input.width)
        assertEquals(e["input_dtype"], m.input.dtype.manifestName)
        assertEquals(e["input_layout"], m.input.layout)
        checkQuant(e["input_quantization"], if (m.input.dtype == DType.FLOAT32) null else m.input.quantization)
        assertEquals(Golden.int(e["output_height"]), m.output.height)
        assertEquals(Golden.int(e["output_width"]), m.output.width)
        assertEquals(e["output_dtype"], m.output.dtype.manifestName)
        checkQuant(e["output_quantization"], m.output.quantization)
        assertEquals(e["precision"], m.precision)
        assertEquals(ModelManifest.FOREGROUND, m.output.spec.name)
    }

    private fun checkQuant(expected: Any?, got: Quantization?) {
        if (expected == null) {
            assertNull("$name quantization", got)
            return
        }
        val e = expected as List<*>
        assertEquals("$name scale", (e[0] as Double).toFloat(), got!!.scale, 0f)
        assertEquals("$name zero point", Golden.int(e[1]), got.zeroPoint)
    }
}
