package dev.sinetdeploy.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class JsonTest {
    @Test
    fun parsesNestedValues() {
        val v = Json.parse("""{"a": [1, -2.5e2, true, false, null], "b": {"c": "d\"\\\/\n\u00e9\ud83d\ude00"}, "e": {}}""") as Map<*, *>
        assertEquals(listOf(1.0, -250.0, true, false, null), v["a"])
        assertEquals("d\"\\/\n\u00e9\ud83d\ude00", (v["b"] as Map<*, *>)["c"])
        assertEquals(emptyMap<String, Any?>(), v["e"])
        assertEquals(listOf("a", "b", "e"), v.keys.toList())
    }

    @Test
    fun acceptsPythonNonFiniteFloats() {
        val v = Json.parse("[NaN, Infinity, -Infinity, 0.0]") as List<*>
        assertTrue((v[0] as Double).isNaN())
        assertEquals(Double.POSITIVE_INFINITY, v[1])
        assertEquals(Double.NEGATIVE_INFINITY, v[2])
    }

    @Test
    fun topLevelScalars() {
        assertNull(Json.parse(" null "))
        assertEquals(3.0, Json.parse("3"))
        assertEquals("x", Json.parse("\"x\""))
    }

    @Test
    fun malformedInputSaysWhere() {
        val bad = listOf("{", "[1,]", "{\"a\" 1}", "[01]", "\"abc", "[1] x", "{'a': 1}", "[1.]", "\"\\x\"", "tru", "")
        for (text in bad) {
            try {
                Json.parse(text)
                fail("accepted malformed JSON: $text")
            } catch (e: JsonException) {
                assertTrue("message names the offset: ${e.message}", e.message!!.contains("at offset"))
            }
        }
    }

    @Test
    fun deepNestingIsRefusedNotOverflowed() {
        val text = "[".repeat(10000) + "]".repeat(10000)
        try {
            Json.parse(text)
            fail("accepted 10000 levels")
        } catch (e: JsonException) {
            assertTrue(e.message!!.contains("deeper"))
        }
    }
}
