package dev.sinetdeploy.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Small checks of the pieces that have no Python counterpart. */
class CoreUnitTest {
    /** A 3x2 frame whose pixel value is its index, to see where each pixel lands. */
    private val w = 3
    private val h = 2
    private val src = ArgbIntSource(IntArray(w * h) { it }, w, h)

    private fun display(rotation: Int, mirror: Boolean): List<Int> {
        val g = FrameGeometry(w, h, rotation, mirror)
        val out = IntArray(g.displayWidth * g.displayHeight)
        Compositor.displayFrame(src, g, out)
        return out.map { it and 0xFFFFFF }
    }

    @Test
    fun rotationsTurnClockwise() {
        // frame:  0 1 2      90 cw:  3 0     180:  5 4 3     270 cw:  2 5
        //         3 4 5              4 1           2 1 0              1 4
        //                            5 2                              0 3
        assertEquals(listOf(0, 1, 2, 3, 4, 5), display(0, false))
        assertEquals(listOf(3, 0, 4, 1, 5, 2), display(90, false))
        assertEquals(listOf(5, 4, 3, 2, 1, 0), display(180, false))
        assertEquals(listOf(2, 5, 1, 4, 0, 3), display(270, false))
        assertEquals(listOf(0, 3, 1, 4, 2, 5), display(90, true))
        assertEquals(listOf(2, 1, 0, 5, 4, 3), display(0, true))
        assertEquals(listOf(2, 1, 0, 5, 4, 3), display(-360, true))
        val g = FrameGeometry(w, h, 90, false)
        assertEquals(2, g.displayWidth)
        assertEquals(3, g.displayHeight)
    }

    @Test(expected = IllegalArgumentException::class)
    fun oddRotationIsRefused() {
        FrameGeometry(4, 4, 45, false)
    }

    @Test
    fun rgbaSourceHonoursStrideAndIgnoresAlpha() {
        val buf = ByteBuffer.allocate(2 * 12)
        // row 0: (10,20,30,a) (40,50,60,a) + 4 padding bytes; row 1 likewise
        val bytes = byteArrayOf(10, 20, 30, 0, 40, 50, 60, 1, 9, 9, 9, 9,
            70, 80, 90, 2, 100, 110, 120, 3, 9, 9, 9, 9)
        buf.put(bytes)
        val s = RgbaBufferSource(buf, 2, 2, 12, 4)
        assertEquals(0x0A141E, s.rgb(0, 0))
        assertEquals(0x646E78, s.rgb(1, 1))
        assertEquals(24, buf.position()) // absolute reads leave the position alone
    }

    @Test
    fun halfFloats() {
        assertEquals(1f, Half.toFloat(0x3C00.toShort()), 0f)
        assertEquals(-2f, Half.toFloat(0xC000.toShort()), 0f)
        assertEquals(65504f, Half.toFloat(0x7BFF.toShort()), 0f)
        assertEquals(5.9604645e-8f, Half.toFloat(0x0001.toShort()), 0f)
        assertEquals(0.5f, Half.toFloat(0x3800.toShort()), 0f)
        assertEquals(Float.POSITIVE_INFINITY, Half.toFloat(0x7C00.toShort()), 0f)
        assertTrue(Half.toFloat(0x7E00.toShort()).isNaN())
    }

    @Test
    fun blendRoundsAndKeepsExtremesExact() {
        val fg = intArrayOf(0xFFFFFFFF.toInt(), 0xFF000000.toInt(), 0xFF804020.toInt())
        val bg = intArrayOf(0xFF000000.toInt(), 0xFFFFFFFF.toInt(), 0xFF000000.toInt())
        val out = IntArray(3)
        Compositor.blend(fg, bg, intArrayOf(255, 0, 128), out, 3)
        assertEquals(0xFFFFFFFF.toInt(), out[0])
        assertEquals(0xFFFFFFFF.toInt(), out[1])
        // 0x80*128/255 = 64.25 -> 64; 0x40*128/255 = 32.1 -> 32; 0x20*128/255 = 16.06 -> 16
        assertEquals(0xFF402010.toInt(), out[2])
        assertEquals(128, Compositor.toAlpha(0.5f)) // 127.5 rounds half to even -> 128
        assertEquals(0, Compositor.toAlpha(-0.2f))
        assertEquals(255, Compositor.toAlpha(1.7f))
    }

    @Test
    fun blurKeepsFlatImagesFlatAndSpreadsAnImpulse() {
        val w = 40
        val h = 24
        val flat = IntArray(w * h) { 0xFF336699.toInt() }
        val out = IntArray(w * h)
        BackgroundBlur(4, 3).blur(flat, w, h, out)
        assertArrayEquals(flat, out)

        val impulse = IntArray(w * h) { 0xFF000000.toInt() }
        for (y in 8 until 12) for (x in 16 until 20) impulse[y * w + x] = 0xFFFFFFFF.toInt()
        BackgroundBlur(4, 1).blur(impulse, w, h, out)
        val centre = out[10 * w + 18] and 0xFF
        val far = out[0] and 0xFF
        assertTrue("centre $centre brighter than far $far", centre > far)
        assertTrue("impulse spread to the neighbours", (out[10 * w + 8] and 0xFF) > 0)
    }

    @Test
    fun boxPassEqualsNaiveSum() {
        val blur = BackgroundBlur(1, 2)
        val w = 7
        val h = 3
        val src = IntArray(w * h * 3) { (it * 37) % 256 }
        val dst = IntArray(src.size)
        blur.boxHorizontal(src, dst, w, h)
        for (y in 0 until h) for (x in 0 until w) for (c in 0 until 3) {
            var sum = 0
            for (k in -2..2) sum += src[(y * w + Math.max(0, Math.min(w - 1, x + k))) * 3 + c]
            assertEquals((sum + 2) / 5, dst[(y * w + x) * 3 + c])
        }
    }

    @Test
    fun outputDecoderReadsNativeOrderFloats() {
        val m = ModelManifest.parse("""{"inputs": [{"name": "image", "shape": [1, 2, 2, 3], "dtype": "uint8"}],
            "outputs": [{"name": "foreground", "shape": [1, 2, 2, 1], "dtype": "float32"}]}""")
        val buf = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder())
        for (i in 0 until 4) buf.putFloat(i * 4, i * 0.25f)
        val out = FloatArray(4)
        OutputDecoder(m.output).decode(buf, out)
        assertArrayEquals(floatArrayOf(0f, 0.25f, 0.5f, 0.75f), out, 0f)
    }

    @Test
    fun fpsFromFrameIntervals() {
        val meter = FpsMeter(weight = 1.0)
        assertEquals(0.0, meter.tick(0L), 0.0)
        assertEquals(25.0, meter.tick(40_000_000L), 1e-9)
        assertEquals(50.0, meter.tick(60_000_000L), 1e-9)
        meter.reset()
        assertEquals(0.0, meter.tick(100_000_000L), 0.0)
    }
}
