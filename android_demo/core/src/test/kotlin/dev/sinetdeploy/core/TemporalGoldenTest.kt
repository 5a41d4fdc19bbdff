package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Test

/** The temporal EMA against `android.golden.smooth` (float32, same operation order). */
class TemporalGoldenTest {
    @Test
    fun emaMatchesPython() {
        for (case in Golden.cases("temporal")) {
            val smoother = TemporalSmoother((case["weight"] as Double).toFloat())
            val frames = case["frames"] as List<*>
            val expected = case["expected"] as List<*>
            for (i in frames.indices) {
                val p = Golden.floats(frames[i])
                smoother.apply(p)
                val stats = DiffStats.of(p, Golden.floats(expected[i]), case["tolerance_probability"] as Double)
                assertEquals("frame $i: $stats", 0, stats.over)
            }
        }
    }

    @Test
    fun resetStartsOver() {
        val s = TemporalSmoother(0.5f)
        s.apply(floatArrayOf(1f, 0f))
        val b = floatArrayOf(0f, 1f)
        s.apply(b)
        assertEquals(0.5f, b[0], 0f)
        s.reset()
        val c = floatArrayOf(0f, 1f)
        s.apply(c)
        assertEquals(0f, c[0], 0f)
        assertEquals(1f, c[1], 0f)
    }

    @Test(expected = IllegalArgumentException::class)
    fun weightOutsideRangeIsRefused() {
        TemporalSmoother(0f)
    }
}
