#!/bin/sh
# Builds and runs the C comparison for the virtqueue round-trip benchmark.
# Usage: benchmarks/c/run.sh [seconds-per-run] [runs]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/outproc-virtqueue-bench
gcc -O2 -std=gnu11 -Wall -Wextra -o "$out" "$here/virtqueue_bench.c"
gcc --version | head -1
exec "$out" "${1:-1}" "${2:-5}"
