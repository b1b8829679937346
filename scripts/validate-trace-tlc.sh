#!/usr/bin/env bash
# Check a recorded lifecycle trace (JSON from verification.trace) with TLC.
#
#   bash scripts/validate-trace-tlc.sh TRACE.json
#
# The trace is rendered as a TLA+ module that EXTENDS the lifecycle spec and
# allows exactly the recorded steps (trace validation); TLC then has to reach
# the end of the trace, which it reports as the invariant TraceNotAccepted
# being violated (TLC exit 12).
#
# Exit codes: 0 TLC accepted the trace; 1 TLC rejected it (or errored);
# 2 usage error; 3 skipped (no java or no tla2tools.jar; first line "SKIP:").
# The jar is looked up like scripts/run-tlc.sh does: $TLA2TOOLS_JAR, then
# ${XDG_CACHE_HOME:-~/.cache}/awa-tla/tla2tools.jar, then .tools/tla2tools.jar
# (run `make tlc` once to let run-tlc.sh download it). Everything runs in a
# temporary directory; nothing is written into the repository.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

[ $# -eq 1 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
TRACE="$1"
[ -f "$TRACE" ] || { echo "no such trace file: $TRACE" >&2; exit 2; }

skip() { echo "SKIP: $*"; exit 3; }
command -v java >/dev/null 2>&1 || skip "java is not installed (TLC needs Java 11+)"
JAR=""
for candidate in "${TLA2TOOLS_JAR:-}" "${XDG_CACHE_HOME:-$HOME/.cache}/awa-tla/tla2tools.jar" "$ROOT/.tools/tla2tools.jar"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then JAR="$candidate"; break; fi
done
[ -n "$JAR" ] || skip "no tla2tools.jar (set TLA2TOOLS_JAR or run make tlc once)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/awa-trace-tlc.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
cp "$ROOT"/specs/*.tla "$WORK"/
(cd "$ROOT" && "$PY" -m verification.trace tla "$TRACE" "$WORK" >/dev/null) || { echo "could not render the trace" >&2; exit 1; }

(cd "$WORK" && java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers 1 -metadir "$WORK/meta" \
    -config PartitionedQueueLifecycleTrace.cfg PartitionedQueueLifecycleTrace.tla > "$WORK/tlc.out" 2>&1)
rc=$?
if [ "$rc" = 12 ] && grep -q "Invariant TraceNotAccepted is violated" "$WORK/tlc.out"; then
    echo "TRACE ACCEPTED by TLC ($(grep -c '^State [0-9]*:' "$WORK/tlc.out") states on the path)"
    exit 0
fi
echo "TRACE REJECTED by TLC (exit $rc): the recorded run is not a behaviour of the spec" >&2
tail -n 25 "$WORK/tlc.out" >&2
exit 1
