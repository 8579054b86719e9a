#!/usr/bin/env bash
# Runs a `go build -v ...` (or `go install -v ...`) that would be silent for minutes, and prints a
# plain progress line every 30 s on stderr (no \r: CI logs stay readable):
#   LABEL: 2 min 30 s, 812 packages compiled (of 2140)
# then one line with the total. go's -v lines (one import path per package compiled) go to a log,
# not to the terminal; when the build fails, the end of that log (the compiler's errors) is shown.
# Exits with the build's code; stdout passes through.
#
#   scripts/go-build-progress.sh [--of N] LABEL -- go build -v ...
#   VERDICT_PROGRESS_SECONDS   seconds between two lines (default 30)
set -euo pipefail
of=""
if [[ "${1:-}" == "--of" ]]; then of="$2"; shift 2; fi
label="${1:?usage: go-build-progress.sh [--of N] LABEL -- COMMAND...}"
shift
[[ "${1:-}" == "--" ]] && shift
[[ $# -gt 0 ]] || { echo "go-build-progress.sh: no command given" >&2; exit 64; }
every="${VERDICT_PROGRESS_SECONDS:-30}"

log="$(mktemp)"
ticker=""
stop_ticker() {
  if [[ -n "$ticker" ]]; then kill "$ticker" 2>/dev/null || true; wait "$ticker" 2>/dev/null || true; fi
  ticker=""
}
# A subshell killed right after its fork, before bash resets its traps, runs this EXIT trap as its
# own (bash 5.2: 1,986 of 2,000 subshells killed at once did): only this script may clean up, or the
# ticker deletes the log that the failure branch is about to show.
cleanup() {
  [[ "$BASHPID" == "$$" ]] || return 0
  stop_ticker
  rm -f "$log"
}
trap cleanup EXIT

# go -v prints each package it compiles as a bare import path; everything else (go: downloading,
# # pkg headers, file:line: errors) has a space, a colon or a #.
compiled() { grep -c -E '^[^[:space:]:#]+$' "$log" || true; }
human() { local s=$1; if ((s >= 60)); then echo "$((s / 60)) min $((s % 60)) s"; else echo "$s s"; fi; }
start=$SECONDS

# The ticker checks every second whether it is still wanted (its parent alive), so it never outlives
# this script by more than a second, even when the script is killed.
parent=$$
(
  next=$((SECONDS + every))
  while kill -0 "$parent" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      echo "$label: $(human $((SECONDS - start))), $(compiled) packages compiled${of:+ (of $of)}" >&2
      next=$((next + every))
    fi
  done
) &
ticker=$!

rc=0
"$@" 2>"$log" || rc=$?
# No progress line may come after the last one.
stop_ticker
if [[ $rc -ne 0 ]]; then
  grep -v -E '^[^[:space:]:#]+$' "$log" | tail -n 40 >&2 || true
  echo "$label: failed (exit $rc) after $(human $((SECONDS - start))), $(compiled) packages compiled" >&2
  exit "$rc"
fi
echo "$label: $(compiled) packages compiled in $(human $((SECONDS - start)))" >&2
