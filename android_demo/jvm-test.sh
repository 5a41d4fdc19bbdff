#!/usr/bin/env bash
# Compile the Android demo's pre/post-processing core (plain Kotlin, no Android imports) and run
# its JUnit tests on the JVM, against golden data computed by the Python tool for the same inputs.
#
#   android_demo/jvm-test.sh            # from anywhere; exit 0 only if every test passed
#
# Needs: a Java runtime (17 here), Debian's `kotlin` (1.3.31) and `junit4` (+ hamcrest). When they are
# missing and we are root, they are installed with apt-get (package registries only); otherwise
# the script says what to install. Golden data: generated now with the project's venv
# (`.venv/bin/sinet-deploy android-golden`), or, without a working venv, the small set
# committed under core/src/test/resources/golden. Environment overrides:
#   SINET_GOLDEN=generate|committed   force one source of golden data
#   SINET_GOLDEN_PROFILE=full|compact  profile of generated data (default full)
#   PYTHON=/path/to/python             interpreter of a venv with sinet-deploy installed (its
#                                      `sinet-deploy` beside it writes the golden data)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="$HERE/.jvm-build"
CORE="$HERE/core"
JAVA_LIBS=/usr/share/java
mkdir -p "$BUILD"

say() { printf '[jvm-test] %s\n' "$*"; }

# ---- toolchain -----------------------------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v kotlinc >/dev/null 2>&1 || missing+=(kotlin)
[ -f "$JAVA_LIBS/junit4.jar" ] || missing+=(junit4)
[ -f "$JAVA_LIBS/hamcrest-core.jar" ] || [ -f "$JAVA_LIBS/hamcrest.jar" ] || missing+=(libhamcrest-java)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing: ${missing[*]} (Debian packages) — run: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt may hold the lock for a while (CI set-up); wait instead of failing.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
HAMCREST="$JAVA_LIBS/hamcrest-core.jar"
[ -f "$HAMCREST" ] || HAMCREST="$JAVA_LIBS/hamcrest.jar"
KOTLIN_STDLIB="$JAVA_LIBS/kotlin-stdlib.jar"
[ -f "$KOTLIN_STDLIB" ] || KOTLIN_STDLIB="$(dirname "$(readlink -f "$(command -v kotlinc)")")/../lib/kotlin-stdlib.jar"
TEST_CP="$JAVA_LIBS/junit4.jar:$HAMCREST"

# ---- golden data ---------------------------------------------------------------------------
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SINET_DEPLOY="$(dirname "$PYTHON")/sinet-deploy"
COMMITTED="$CORE/src/test/resources/golden"
GOLDEN="$BUILD/golden"
mode="${SINET_GOLDEN:-auto}"
if [ "$mode" != committed ] && [ -x "$SINET_DEPLOY" ] && (cd "$ROOT" && "$SINET_DEPLOY" android-golden --help >/dev/null 2>&1); then
    artifacts=()
    # A real exported model in the app's assets is run with LiteRT and becomes a test case too.
    for t in "$HERE"/app/src/main/assets/*.tflite; do
        [ -f "$t" ] && [ -f "${t%.tflite}.json" ] && artifacts+=(--artifact "$t")
    done
    rm -rf "$GOLDEN.tmp"
    say "generating golden data with $SINET_DEPLOY android-golden (${#artifacts[@]} artifact args)"
    (cd "$ROOT" && "$SINET_DEPLOY" android-golden "$GOLDEN.tmp" \
        --profile "${SINET_GOLDEN_PROFILE:-full}" ${artifacts[@]+"${artifacts[@]}"}) | sed 's/^/[jvm-test] golden: /'
    rm -rf "$GOLDEN" && mv "$GOLDEN.tmp" "$GOLDEN"
elif [ "$mode" = generate ]; then
    say "SINET_GOLDEN=generate but $SINET_DEPLOY android-golden does not run" >&2
    exit 2
else
    why="no working sinet-deploy at $SINET_DEPLOY"
    [ "$mode" = committed ] && why="SINET_GOLDEN=committed"
    say "using the committed golden set ($COMMITTED): $why"
    GOLDEN="$COMMITTED"
fi
[ -f "$GOLDEN/cases.json" ] || { say "no cases.json in $GOLDEN" >&2; exit 2; }

# ---- compile (cached by a hash of the sources and the compiler) ----------------------------
SOURCES=$(cd "$CORE" && find src/main/kotlin src/test/kotlin -name '*.kt' | LC_ALL=C sort)
KEY=$( (kotlinc -version 2>&1 | grep -i kotlin || true; cd "$CORE" && cat $SOURCES) | sha256sum | cut -c1-16)
CLASSES="$BUILD/classes-$KEY"
if [ ! -d "$CLASSES" ]; then
    rm -rf "$BUILD"/classes-*
    say "compiling $(echo "$SOURCES" | wc -l) Kotlin files with $(kotlinc -version 2>&1 | grep -io 'kotlinc-jvm [0-9.]*' || echo kotlinc)"
    # Main and test sources in one kotlinc run: the compiler's start-up dominates the time.
    (cd "$CORE" && kotlinc -jvm-target 1.8 -nowarn -cp "$TEST_CP" -d "$CLASSES.tmp" $SOURCES 2>&1 \
        | grep -v -e 'Xverify:none' -e '^$' || true)
    [ -f "$CLASSES.tmp/dev/sinetdeploy/core/RunAll.class" ] || { say "compilation failed" >&2; rm -rf "$CLASSES.tmp"; exit 1; }
    mv "$CLASSES.tmp" "$CLASSES"
else
    say "sources unchanged: reusing $CLASSES"
fi

# ---- run -----------------------------------------------------------------------------------
TESTS=$(cd "$CLASSES" && find . -name '*Test.class' ! -name '*$*' | sed 's|^\./||; s|\.class$||; s|/|.|g' | LC_ALL=C sort)
say "running $(echo "$TESTS" | wc -l) test classes against $GOLDEN"
java -Dgolden.dir="$GOLDEN" -cp "$CLASSES:$KOTLIN_STDLIB:$TEST_CP" dev.sinetdeploy.core.RunAll $TESTS
