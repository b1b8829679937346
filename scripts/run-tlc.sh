#!/usr/bin/env bash
# Model-check the TLA+ specs with TLC and compare every outcome with
# specs/models.tsv (expected result, TLC exit code, distinct-state count).
#
#   bash scripts/run-tlc.sh                 # every model in the manifest
#   bash scripts/run-tlc.sh NAME...         # NAME = SPEC/CFG or a cfg file name
#   bash scripts/run-tlc.sh --list          # list the models
#   bash scripts/run-tlc.sh -v ...          # also print TLC's summary lines
#   bash scripts/run-tlc.sh --trace T.json  # validate a recorded state-machine trace (scripts/validate-trace-tlc.sh)
#
# Exit codes: 0 every model matched the manifest; 1 a mismatch or a TLC
# error; 2 usage error; 3 skipped (no java or no tla2tools.jar -- the first
# line of output then starts with "SKIP:" and gives the reason).
#
# tla2tools.jar is looked up in this order: $TLA2TOOLS_JAR; the user cache
# ${XDG_CACHE_HOME:-~/.cache}/awa-tla/tla2tools.jar; .tools/tla2tools.jar in
# the repository; finally the pinned release below is downloaded into the
# user cache when the network answers quickly (set AWA_TLC_NO_DOWNLOAD=1 to
# forbid that).  TLC runs on a copy of specs/ in a temporary directory, so
# no states/ or trace files are ever left in the repository.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MANIFEST="$ROOT/specs/models.tsv"

# v1.8.0 is a rolling pre-release whose asset is replaced in place, so it
# cannot be pinned by hash; v1.7.4 is the newest stable release.
TLA_RELEASE="v1.7.4"
TLA_URL="https://github.com/tlaplus/tlaplus/releases/download/${TLA_RELEASE}/tla2tools.jar"
TLA_SHA256="936a262061c914694dfd669a543be24573c45d5aa0ff20a8b96b23d01e050e88"
CACHE_JAR="${XDG_CACHE_HOME:-$HOME/.cache}/awa-tla/tla2tools.jar"
REPO_JAR="$ROOT/.tools/tla2tools.jar"

EXIT_OK=0
EXIT_MISMATCH=1
EXIT_USAGE=2
EXIT_SKIP=3

WORKERS="${TLC_WORKERS:-auto}"
MODEL_TIMEOUT="${TLC_TIMEOUT:-1800}"
VERBOSE=0
LIST_ONLY=0
SELECTED=()

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit "$EXIT_OK" ;;
        -v|--verbose) VERBOSE=1 ;;
        --list) LIST_ONLY=1 ;;
        --workers) shift; [ $# -gt 0 ] || { echo "usage: --workers N" >&2; exit "$EXIT_USAGE"; }; WORKERS="$1" ;;
        # Validate a recorded state-machine trace (verification.trace JSON) instead of the models.
        --trace) shift; [ $# -gt 0 ] || { echo "usage: --trace TRACE.json" >&2; exit "$EXIT_USAGE"; }
                 exec bash "$(dirname "${BASH_SOURCE[0]}")/validate-trace-tlc.sh" "$1" ;;
        -*) echo "unknown option: $1" >&2; usage >&2; exit "$EXIT_USAGE" ;;
        *) SELECTED+=("$1") ;;
    esac
    shift
done

[ -f "$MANIFEST" ] || { echo "missing manifest $MANIFEST" >&2; exit "$EXIT_USAGE"; }

# Manifest rows: spec cfg expected tlc_exit distinct_states mirror notes.
ROWS=()
while IFS=$'\t' read -r spec cfg expected tlc_exit states _mirror _notes; do
    [ "$spec" = "spec" ] && continue
    [ -z "$spec" ] && continue
    if [ ${#SELECTED[@]} -gt 0 ]; then
        keep=0
        for name in "${SELECTED[@]}"; do
            if [ "$name" = "$spec/$cfg" ] || [ "$name" = "$cfg" ] || [ "$name" = "${cfg%.cfg}" ]; then
                keep=1
            fi
        done
        [ "$keep" = 1 ] || continue
    fi
    ROWS+=("$spec"$'\t'"$cfg"$'\t'"$expected"$'\t'"$tlc_exit"$'\t'"$states")
done < "$MANIFEST"

if [ ${#SELECTED[@]} -gt 0 ] && [ ${#ROWS[@]} -eq 0 ]; then
    echo "no model in specs/models.tsv matches: ${SELECTED[*]}" >&2
    exit "$EXIT_USAGE"
fi

if [ "$LIST_ONLY" = 1 ]; then
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r spec cfg expected tlc_exit states <<< "$row"
        echo "$spec/$cfg expected=$expected exit=$tlc_exit states=$states"
    done
    exit "$EXIT_OK"
fi

skip() {
    echo "SKIP: $1"
    echo "TLC model checks skipped; the Python mirrors (make mirrors) still run." >&2
    exit "$EXIT_SKIP"
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        echo "no-sha256-tool"
    fi
}

download_jar() {
    # Prints nothing on success; a reason on failure.
    [ "${AWA_TLC_NO_DOWNLOAD:-0}" = 1 ] && { echo "download disabled (AWA_TLC_NO_DOWNLOAD=1)"; return 1; }
    command -v curl >/dev/null 2>&1 || { echo "curl not installed"; return 1; }
    local tmp
    tmp=$(mktemp "${TMPDIR:-/tmp}/tla2tools.XXXXXX") || { echo "mktemp failed"; return 1; }
    if ! curl --fail --silent --location --connect-timeout 5 --max-time 120 \
            --output "$tmp" "$TLA_URL" 2>/dev/null; then
        rm -f "$tmp"
        echo "download of $TLA_RELEASE failed (offline?)"
        return 1
    fi
    local got
    got=$(sha256_of "$tmp")
    if [ "$got" != "$TLA_SHA256" ]; then
        rm -f "$tmp"
        echo "downloaded $TLA_RELEASE jar has sha256 $got, expected $TLA_SHA256"
        return 1
    fi
    mkdir -p "$(dirname "$CACHE_JAR")" && mv "$tmp" "$CACHE_JAR" || { rm -f "$tmp"; echo "cannot write $CACHE_JAR"; return 1; }
    return 0
}

command -v java >/dev/null 2>&1 || skip "java is not installed (TLC needs Java 11+)"

JAR=""
if [ -n "${TLA2TOOLS_JAR:-}" ]; then
    [ -f "$TLA2TOOLS_JAR" ] || skip "TLA2TOOLS_JAR=$TLA2TOOLS_JAR is not a file"
    JAR="$TLA2TOOLS_JAR"
elif [ -f "$CACHE_JAR" ]; then
    JAR="$CACHE_JAR"
elif [ -f "$REPO_JAR" ]; then
    JAR="$REPO_JAR"
else
    reason=$(download_jar) || skip "no tla2tools.jar: TLA2TOOLS_JAR unset, none at $CACHE_JAR or $REPO_JAR; $reason"
    JAR="$CACHE_JAR"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/awa-tlc.XXXXXX") || { echo "mktemp failed" >&2; exit "$EXIT_MISMATCH"; }
trap 'rm -rf "$WORK"' EXIT

# What TLC reported: the violated invariant/property name, or "pass".
tlc_verdict() {
    local rc="$1" out="$2" name=""
    case "$rc" in
        0) echo "pass"; return ;;
        12) name=$(sed -nE 's/^Error: (Invariant|Action property) ([A-Za-z0-9_]+) is violated.*/\2/p' "$out" | head -n1) ;;
        # TLC exits 13 for a violated PROPERTY: temporal (leads-to) or action ([][A]_v).
        13) name=$(sed -nE 's/^Error: (Temporal|Action) property ([A-Za-z0-9_]+) (was|is) violated.*/\2/p' "$out" | head -n1) ;;
        151) name=$(sed -nE 's/^Error: The invariant of ([A-Za-z0-9_]+) is equal to FALSE.*/\1/p' "$out" | head -n1) ;;
        10) name=$(sed -nE 's/^Error: Assumption (.*) is false.*/ASSUME/p' "$out" | head -n1) ;;
    esac
    # Older TLC releases do not always name the violated temporal property.
    echo "${name:-unnamed-exit-$rc}"
}

total=${#ROWS[@]}
index=0
failures=0
for row in "${ROWS[@]}"; do
    index=$((index + 1))
    IFS=$'\t' read -r spec cfg expected tlc_exit states <<< "$row"
    model="$spec/$cfg"
    echo "[$index/$total] running TLC on $model ..." >&2

    run_dir="$WORK/$index"
    mkdir -p "$run_dir"
    cp "$ROOT"/specs/*.tla "$run_dir"/
    cp "$ROOT/specs/$cfg" "$run_dir/"
    # A failing model is checked with one worker so TLC's trace is a
    # shortest one, comparable with the Python mirror's.
    workers="$WORKERS"
    [ "$expected" != "pass" ] && workers=1
    started=$(date +%s)
    runner=()
    command -v timeout >/dev/null 2>&1 && runner=(timeout "$MODEL_TIMEOUT")
    (cd "$run_dir" && "${runner[@]}" java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC \
        -workers "$workers" -metadir "$run_dir/meta" -config "$cfg" "$spec.tla" \
        > "$run_dir/tlc.out" 2>&1)
    rc=$?
    elapsed=$(( $(date +%s) - started ))

    got=$(tlc_verdict "$rc" "$run_dir/tlc.out")
    summary=$(grep -E '^[0-9]+ states generated, [0-9]+ distinct states found' "$run_dir/tlc.out" | tail -n1)
    found=$(printf '%s\n' "$summary" | sed -nE 's/^[0-9]+ states generated, ([0-9]+) distinct states found.*/\1/p')
    found=${found:--}

    ok=1
    [ "$rc" = "$tlc_exit" ] || ok=0
    if [ "$got" != "$expected" ]; then
        # Accept an unnamed verdict only when the exit code already proves it.
        case "$got" in unnamed-exit-*) [ "$rc" = "$tlc_exit" ] && [ "$rc" != 0 ] || ok=0 ;; *) ok=0 ;; esac
    fi
    if [ "$expected" = "pass" ] && [ "$found" != "$states" ]; then
        ok=0
    fi
    trace_len=$(grep -cE '^State [0-9]+:' "$run_dir/tlc.out")
    shown_states="$found"
    [ "$expected" != "pass" ] && shown_states="-"
    line="$model expected=$expected got=$got exit=$rc states=$shown_states"
    [ "$trace_len" -gt 0 ] && line="$line trace=$trace_len"
    if [ "$ok" = 1 ]; then
        echo "PASS $line (${elapsed}s)"
    else
        failures=$((failures + 1))
        echo "FAIL $line manifest_exit=$tlc_exit manifest_states=$states (${elapsed}s)"
        echo "---- last lines of TLC output for $model ----"
        tail -n 25 "$run_dir/tlc.out" | sed 's/^/    /'
    fi
    if [ "$VERBOSE" = 1 ]; then
        grep -E '^(Error:|Warning:|Model checking completed|[0-9]+ states generated|The depth|Finished in|State [0-9]+:)' \
            "$run_dir/tlc.out" | sed 's/^/    | /'
    fi
done

echo "$((total - failures))/$total models match specs/models.tsv (TLC: $JAR)"
[ "$failures" -eq 0 ] && exit "$EXIT_OK"
exit "$EXIT_MISMATCH"
