package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized
import java.nio.ByteBuffer

/**
 * The whole core on the golden frame (front camera, portrait phone: rotation 90, mirrored):
 * the model input it builds must be the Python tool's bytes, and given the model's output for
 * that input (PyTorch reference, or LiteRT on a real artifact) its mask at view size must match
 * the tool's within 1/255.
 */
@RunWith(Parameterized::class)
class PipelineGoldenTest(private val name: String, private val case: Map<String, Any?>) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}")
        fun data(): List<Array<Any>> = Golden.parameters("pipeline")
    }

    private val e2e = Golden.index["e2e"] as Map<*, *>
    private val frame = Golden.frame(e2e["frame"] as String)
    private val geometry = FrameGeometry(Golden.int(frame["width"]), Golden.int(frame["height"]),
        Golden.int(e2e["rotation"]), Golden.bool(e2e["mirror"]))
    private val manifest = Golden.manifest(case["manifest"])

    /** Stands in for LiteRT: checks what it is fed, answers with the recorded model output. */
    private inner class RecordedModel : ModelRunner {
        var calls = 0
        val expectedInput: ByteBuffer = Golden.bytes(case["tensor"])
        val recordedOutput: ByteBuffer = Golden.bytes(case["output"])

        override fun run(input: ByteBuffer, output: ByteBuffer) {
            calls++
            assertEquals("$name input size", expectedInput.capacity(), manifest.input.spec.byteSize)
            var diffs = 0
            for (i in 0 until expectedInput.capacity()) if (input.get(i) != expectedInput.get(i)) diffs++
            assertEquals("$name: $diffs model input bytes differ from Python's image_input", 0, diffs)
            assertEquals(recordedOutput.capacity(), output.capacity())
            // The golden output is little-endian; the pipeline's buffer is in native order, as
            // LiteRT writes it. Copy element-wise so the test holds on either byte order.
            when (manifest.output.dtype) {
                DType.FLOAT32 -> for (i in 0 until output.capacity() / 4) output.putFloat(i * 4, recordedOutput.getFloat(i * 4))
                DType.FLOAT16 -> for (i in 0 until output.capacity() / 2) output.putShort(i * 2, recordedOutput.getShort(i * 2))
                else -> for (i in 0 until output.capacity()) output.put(i, recordedOutput.get(i))
            }
        }
    }

    @Test
    fun maskFromGoldenFrameMatchesPython() {
        val pipeline = SegmentationPipeline(manifest)
        pipeline.effect = Effect.MASK
        val model = RecordedModel()
        val result = pipeline.process(Golden.source("e2e", "rgba"), geometry, model)
        assertEquals(1, model.calls)
        assertEquals(geometry.displayWidth, result.width)
        assertEquals(geometry.displayHeight, result.height)
        val expected = Golden.ubytes(case["alpha"])
        val stats = DiffStats.of(pipeline.lastAlpha().copyOf(expected.size), expected,
            Golden.int(case["tolerance_alpha_levels"]))
        assertEquals("$name alpha vs Python: $stats", 0, stats.over)
        assertTrue("$name: alpha within 1/255", stats.maxAbs <= 1.0)
    }

    @Test
    fun effectNoneShowsTheUprightMirroredFrame() {
        val pipeline = SegmentationPipeline(manifest)
        pipeline.effect = Effect.NONE
        val result = pipeline.process(Golden.source("e2e", "argb"), geometry, RecordedModel())
        val expected = Golden.ubytes(frame["display"])
        val got = IntArray(result.width * result.height * 3)
        for (i in 0 until result.width * result.height) {
            val p = result.argb[i]
            got[i * 3] = (p shr 16) and 0xFF
            got[i * 3 + 1] = (p shr 8) and 0xFF
            got[i * 3 + 2] = p and 0xFF
        }
        val stats = DiffStats.of(got, expected, 0)
        assertEquals("$name display: $stats", 0, stats.over)
    }

    @Test
    fun blurAndReplaceKeepThePersonAndSwapTheBackground() {
        val pipeline = SegmentationPipeline(manifest)
        val src = Golden.source("e2e", "rgba")
        pipeline.effect = Effect.NONE
        val plain = pipeline.process(src, geometry, RecordedModel()).argb.copyOf()
        pipeline.effect = Effect.REPLACE
        pipeline.backdrop = SolidBackdrop(0x123456)
        val replaced = pipeline.process(src, geometry, RecordedModel()).argb.copyOf()
        val alpha = pipeline.lastAlpha().copyOf()
        val backdrop = IntArray(1) { 0xFF123456.toInt() }
        val one = IntArray(1)
        var person = 0
        var background = 0
        for (i in plain.indices) {
            // Every pixel is the frame over the backdrop, weighted by the mask.
            Compositor.blend(intArrayOf(plain[i]), backdrop, intArrayOf(alpha[i]), one, 1)
            assertEquals("pixel $i", one[0], replaced[i])
            if (alpha[i] > 200) person++
            if (alpha[i] < 55) background++
        }
        assertTrue("$name: the golden frame has both person ($person) and background ($background) pixels",
            person > 0 && background > 0)
        pipeline.effect = Effect.BLUR
        val blurred = pipeline.process(src, geometry, RecordedModel())
        var changed = 0
        for (i in plain.indices) {
            if (alpha[i] == 255) assertEquals(plain[i], blurred.argb[i])
            if (alpha[i] < 55 && blurred.argb[i] != plain[i]) changed++
        }
        assertTrue("$name: blur changed $changed of $background background pixels", changed > background / 2)
    }
}
