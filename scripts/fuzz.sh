#!/usr/bin/env bash
# Runs the Jazzer fuzz targets as campaigns (not the corpus replays of a normal build).
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]
#
# A target is module:Class#method (e.g. vhost-user:DispatchFuzzTest#dispatchArbitrarySequences); without
# targets every target below runs. Each target fuzzes for at least the given seconds (default 30, the short
# campaign of .ci/run): a @FuzzTest fuzzes for its annotation's maxDuration (30 s) per run, so a longer
# campaign is a series of runs that share the corpus in <module>/.cifuzz-corpus (it survives between runs
# and between invocations). A finding is written to the target's
# src/test/resources/<package>/<Class>Inputs/<method>/crash-* and fails the run. The executions of each
# campaign are printed at the end (the sum of libFuzzer's "Done N runs" lines).
#
# Works from a fresh clone: each run builds what its module needs in the reactor (-am, phase test; nothing
# is installed), so the test classpath, test-jars of sibling modules included, comes from the reactor. Each
# run costs a Maven and JVM start and Jazzer's instrumentation on top of its fuzzing time.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-30}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(
        vhost-user:DispatchFuzzTest#dispatchArbitrarySequences
        vhost-user:BackendChannelFuzzTest#readArbitraryBackendRequests
        vhost-user:MessageDecoderFuzzTest#decodeArbitraryMessages
        core:VirtqueueFuzzTest#popArbitraryRings
        core:ChainWalkerFuzzTest#walkArbitraryChains
        vfio-user:MessageDecoderFuzzTest#decodeArbitraryMessages
        vfio-user:ServerSessionFuzzTest#serveArbitraryMessagesAfterVersion
        migration-format:StreamReaderFuzzTest#decodeArbitraryStream
        migration-format:StreamReaderFuzzTest#restoreArbitrarySnapshot
        migration-format:RegistryParserFuzzTest#parseArbitraryRegistry
        migration-format:RegistryParserFuzzTest#parseArbitraryDescriptor
        migration-format:HandshakeDecoderFuzzTest#decodeArbitraryMessages
        migration-format:HandshakeFramingFuzzTest#readArbitraryHandshakeStream
        examples:StreamPrinterFuzzTest#inspectArbitraryStream
        examples:SampleCardStateFuzzTest#readArbitraryStreams
        examples:VirtioPciStateTest#decodeDamagedSections
    )
fi

JAVA_HOME=$(sh scripts/jdk22.sh)
export JAVA_HOME PATH="$JAVA_HOME/bin:$PATH"
LOGS=target/fuzz
mkdir -p "$LOGS"

status=0
summary=()
campaign_start=$(date +%s)
for t in "${TARGETS[@]}"; do
    module=${t%%:*}
    test=${t#*:}
    log="$LOGS/$module-${test//#/-}.log"
    : >"$log"
    echo "== $t: ${SECONDS_PER_TARGET} s"
    result=ok
    start=$(date +%s)
    # JAZZER_FUZZ turns the replay into a campaign of the annotation's maxDuration.
    while :; do
        if ! JAZZER_FUZZ=1 ./mvnw -B -q test -pl "$module" -am -Dsurefire.failIfNoSpecifiedTests=false \
                -Dtest="$test" >>"$log" 2>&1; then
            result=FINDING
            status=1
            break
        fi
        [ $(( $(date +%s) - start + 30 )) -le "$SECONDS_PER_TARGET" ] || break
    done
    runs=$(grep -a -o 'Done [0-9]* runs' "$log" | awk '{n += $2} END {print n + 0}')
    secs=$(grep -a -o 'runs in [0-9]* second' "$log" | awk '{n += $3} END {print n + 0}')
    summary+=("$t: $result, $runs executions in $secs s of fuzzing, $(( $(date +%s) - start )) s in all (log $log)")
done
printf '%s\n' "${summary[@]}"
echo "fuzz campaigns: ${#TARGETS[@]} targets in $(( $(date +%s) - campaign_start )) s"
exit $status
