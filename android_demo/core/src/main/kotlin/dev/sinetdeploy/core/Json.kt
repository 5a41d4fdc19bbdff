package dev.sinetdeploy.core

/**
 * A small, strict JSON reader (RFC 8259, plus Python's `NaN`/`Infinity`) for the model manifest.
 *
 * Why hand-written: Android's `org.json` is not on a plain JVM, and the manifest is a few KB of
 * trusted-format text, so a 150-line reader keeps the core free of any dependency that would have
 * to exist both in Debian (for `jvm-test.sh`) and on Google's Maven (for the app).
 *
 * Values map to: object -> [Map] (insertion order kept), array -> [List], string -> [String],
 * number -> [Double], true/false -> [Boolean], null -> `null`.
 *
 * Written for Kotlin 1.3 (the Debian compiler) and still warning-free on current Kotlin: no
 * `Char.code`, no locale case conversions.
 */
object Json {
    /** Parses [text] into the value tree described above; [JsonException] names the offset. */
    @JvmStatic
    fun parse(text: String): Any? {
        val reader = Reader(text)
        reader.skipWhitespace()
        val value = reader.readValue(0)
        reader.skipWhitespace()
        if (!reader.atEnd()) throw reader.error("unexpected text after the JSON value")
        return value
    }

    private const val MAX_DEPTH = 64

    private class Reader(val s: String) {
        var pos = 0

        fun atEnd(): Boolean = pos >= s.length

        fun error(message: String): JsonException = JsonException("$message at offset $pos")

        fun skipWhitespace() {
            while (pos < s.length) {
                val c = s[pos]
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') pos++ else return
            }
        }

        fun readValue(depth: Int): Any? {
            if (depth > MAX_DEPTH) throw error("JSON nested deeper than $MAX_DEPTH levels")
            if (atEnd()) throw error("unexpected end of JSON")
            val c = s[pos]
            return when {
                c == '{' -> readObject(depth)
                c == '[' -> readArray(depth)
                c == '"' -> readString()
                c == '-' && s.startsWith("-Infinity", pos) -> { pos += 9; Double.NEGATIVE_INFINITY }
                c == '-' || c in '0'..'9' -> readNumber()
                s.startsWith("true", pos) -> { pos += 4; true }
                s.startsWith("false", pos) -> { pos += 5; false }
                s.startsWith("null", pos) -> { pos += 4; null }
                // Python's json.dump writes these for float nan/inf (allow_nan=True default);
                // a manifest with a NaN metric must still load.
                s.startsWith("NaN", pos) -> { pos += 3; Double.NaN }
                s.startsWith("Infinity", pos) -> { pos += 8; Double.POSITIVE_INFINITY }
                else -> throw error("unexpected character '$c'")
            }
        }

        fun readObject(depth: Int): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            pos++ // '{'
            skipWhitespace()
            if (pos < s.length && s[pos] == '}') { pos++; return out }
            while (true) {
                skipWhitespace()
                if (atEnd() || s[pos] != '"') throw error("expected a quoted key")
                val key = readString()
                skipWhitespace()
                expect(':')
                skipWhitespace()
                out[key] = readValue(depth + 1)
                skipWhitespace()
                if (atEnd()) throw error("unterminated object")
                val c = s[pos++]
                if (c == '}') return out
                if (c != ',') { pos--; throw error("expected ',' or '}'") }
            }
        }

        fun readArray(depth: Int): List<Any?> {
            val out = ArrayList<Any?>()
            pos++ // '['
            skipWhitespace()
            if (pos < s.length && s[pos] == ']') { pos++; return out }
            while (true) {
                skipWhitespace()
                out.add(readValue(depth + 1))
                skipWhitespace()
                if (atEnd()) throw error("unterminated array")
                val c = s[pos++]
                if (c == ']') return out
                if (c != ',') { pos--; throw error("expected ',' or ']'") }
            }
        }

        fun expect(c: Char) {
            if (atEnd() || s[pos] != c) throw error("expected '$c'")
            pos++
        }

        fun readString(): String {
            pos++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (atEnd()) throw error("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (atEnd()) throw error("unterminated escape")
                        when (val e = s[pos++]) {
                            '"' -> sb.append('"')
                            '\\' -> sb.append('\\')
                            '/' -> sb.append('/')
                            'b' -> sb.append('\b')
                            'f' -> sb.append('\u000C')
                            'n' -> sb.append('\n')
                            'r' -> sb.append('\r')
                            't' -> sb.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) throw error("short \\u escape")
                                val hex = s.substring(pos, pos + 4)
                                val code = try {
                                    Integer.parseInt(hex, 16)
                                } catch (ex: NumberFormatException) {
                                    throw error("bad \\u escape '$hex'")
                                }
                                // Surrogate pairs arrive as two escapes; appending both halves
                                // rebuilds the character, as Java strings are UTF-16.
                                sb.append(code.toChar())
                                pos += 4
                            }
                            else -> { pos--; throw error("bad escape '\\$e'") }
                        }
                    }
                    c < ' ' -> { pos--; throw error("control character in string") }
                    else -> sb.append(c)
                }
            }
        }

        fun readNumber(): Double {
            val start = pos
            if (s[pos] == '-') pos++
            if (atEnd()) throw error("bad number")
            if (s[pos] == '0') {
                pos++
            } else if (s[pos] in '1'..'9') {
                while (pos < s.length && s[pos] in '0'..'9') pos++
            } else {
                throw error("bad number")
            }
            if (pos < s.length && s[pos] == '.') {
                pos++
                val digits = pos
                while (pos < s.length && s[pos] in '0'..'9') pos++
                if (pos == digits) throw error("bad number: no digits after '.'")
            }
            if (pos < s.length && (s[pos] == 'e' || s[pos] == 'E')) {
                pos++
                if (pos < s.length && (s[pos] == '+' || s[pos] == '-')) pos++
                val digits = pos
                while (pos < s.length && s[pos] in '0'..'9') pos++
                if (pos == digits) throw error("bad number: no exponent digits")
            }
            return s.substring(start, pos).toDouble()
        }
    }
}

/** Malformed JSON; the message says what was expected and where. */
class JsonException(message: String) : RuntimeException(message)
