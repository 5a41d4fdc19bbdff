package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/**
 * Model output -> probability -> alpha at view size, against the Python tool: dequantization of
 * uint8/int8 (and float16/float32) outputs, `inference.resize_probability` for the upscale,
 * within 1/255 for probabilities and 1 level for the 8-bit alpha (the acceptance tolerance).
 */
@RunWith(Parameterized::class)
class PostprocessGoldenTest(private val name: String, private val case: Map<String, Any?>) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun data(): List<Array<Any>> = Golden.parameters("postprocess")
    }

    private val manifest = Golden.manifest(case["manifest"])
    private val tolP = case["tolerance_probability"] as Double
    private val tolA = Golden.int(case["tolerance_alpha_levels"])

    private fun decoded(): FloatArray {
        val decoder = OutputDecoder(manifest.output)
        val prob = FloatArray(decoder.size)
        decoder.decode(Golden.bytes(case["output"]), prob)
        return prob
    }

    @Test
    fun dequantizedProbabilityMatchesPython() {
        val stats = DiffStats.of(decoded(), Golden.floats(case["probability"]), tolP)
        assertEquals("$name probability: $stats", 0, stats.over)
    }

    @Test
    fun maskAtViewSizeMatchesPython() {
        val vh = Golden.int(case["view_height"])
        val vw = Golden.int(case["view_width"])
        val up = FloatArray(vh * vw)
        val alpha = IntArray(vh * vw)
        Compositor.alphaMask(decoded(), manifest.output.height, manifest.output.width, vh, vw, up, alpha)
        val pStats = DiffStats.of(up, Golden.floats(case["upscaled"]), tolP)
        assertEquals("$name upscaled probability: $pStats", 0, pStats.over)
        val aStats = DiffStats.of(alpha, Golden.ubytes(case["alpha"]), tolA)
        assertEquals("$name alpha: $aStats", 0, aStats.over)
        assertTrue("$name: |diff| ${pStats.maxAbs} should be within 1/255", pStats.maxAbs <= 1.0 / 255.0)
    }
}
