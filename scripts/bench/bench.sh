#!/bin/sh
# bench.sh — `make bench`: probe against PyTorch and the machine's FLOP ceiling.
#
#   make bench                      # full: 16 windows of 1024 tokens, median of 5 runs
#   BENCH_RUNS=9 make bench         # more runs
#   BENCH_QUICK=1 make bench        # smoke test: 2 windows, 1 run (numbers meaningless)
#
# Builds, into bench-cache/ (ignored by git, kept between runs):
#   sgemm_peak     scripts/bench/sgemm_peak.c against OpenBLAS
#   bench_forward  scripts/bench/bench_forward.c against probe's own objects
#                  (the Makefile's $(BUILD)/bench_forward target)
# then runs scripts/bench/bench_run.py, which generates the checkpoint and corpus
# once, times everything and prints the table and the closing line
#   record/peer=X.XX forward/ceiling=Y.YY db_overhead=Z.ZZ rss/weights=W.WW concept/record=C.CC ablate/forward=A.AA
# Run it on an otherwise idle machine: the figures are only as quiet as it is.
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CACHE=bench-cache
mkdir -p "$CACHE"

# the peer and the checkpoint generator need Debian's NumPy and PyTorch; the
# rest of the bench's Python is the standard library (the corpus is tokenized
# by ./probe itself)
if ! /usr/bin/python3 -c 'import numpy, torch' 2>/dev/null; then
    echo "bench: needs Debian's python3-numpy and python3-torch for /usr/bin/python3; install them with" >&2
    echo "  sh scripts/install_deps.sh --bench     (as root, or as a user with sudo)" >&2
    exit 1
fi

# bench_forward is built by the Makefile (same flags and objects as ./probe)
make -s BUILD="$BUILD" probe "$BUILD/bench_forward"
cp "$BUILD/bench_forward" "$CACHE/bench_forward"
cc -O2 -o "$CACHE/sgemm_peak" scripts/bench/sgemm_peak.c $(pkg-config --cflags --libs openblas)

exec /usr/bin/python3 scripts/bench/bench_run.py
