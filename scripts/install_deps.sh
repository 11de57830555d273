#!/bin/sh
# install_deps.sh — installs the Debian/Ubuntu packages that probe needs:
#
#   sh scripts/install_deps.sh            # to build, `make demo` and `make test`
#   sh scripts/install_deps.sh --bench    # also what `make bench` needs
#   sh scripts/install_deps.sh --fixtures # also what `make fixtures` needs
#   sh scripts/install_deps.sh --fuzz     # also what `make fuzz` needs
#
# Build and test: a C compiler and make (build-essential), pkg-config, OpenBLAS,
# cJSON, SQLite 3 (library and the sqlite3 shell), check (the unit-test
# framework), python3 with python3-numpy and python3-regex (the tests read the
# database through /usr/bin/python3's sqlite3 module and compare with the NumPy
# references of scripts/reference/) and parallel (GNU parallel: the test of
# scripts/record_parallel.sh), chromium and fonts-liberation (the test of
# `probe report` opens its pages in headless Chromium). --bench adds Debian's
# python3-numpy and python3-torch (the PyTorch peer and the checkpoint
# generator). --fixtures
# adds python3-numpy, python3-regex (the references and generators of
# scripts/fixtures/) and nodejs + npm (the tokenizer's cross-check). --fuzz
# adds clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes of
# Debian 12's clang 14; `make test` runs the harnesses without them).
#
# Runs `apt-get update`, then `apt-get install -y --no-install-recommends ...`,
# non-interactively: directly as root, otherwise through sudo. Used by the
# README's Quick start and by CI (.ci/run).
set -e

PKGS="build-essential pkg-config libopenblas-dev libcjson-dev libsqlite3-dev check sqlite3 python3 python3-numpy python3-regex parallel chromium fonts-liberation"
BENCH_PKGS="python3-numpy python3-torch"
FIXTURE_PKGS="python3-numpy python3-regex nodejs npm"
FUZZ_PKGS="clang libclang-rt-14-dev"

usage() {
    cat <<EOF
usage: sh scripts/install_deps.sh [--bench] [--fixtures] [--fuzz]

Installs, with apt-get (as root, else through sudo), the Debian packages that
probe needs to build and test:
  $PKGS
  --bench     also what \`make bench\` needs: $BENCH_PKGS
  --fixtures  also what \`make fixtures\` needs: $FIXTURE_PKGS
  --fuzz      also what \`make fuzz\` needs: $FUZZ_PKGS
  -h, --help  this help
EOF
}

for arg in "$@"; do
    case "$arg" in
        --bench) PKGS="$PKGS $BENCH_PKGS" ;;
        --fixtures)
            # NodeSource's nodejs ships npm itself and conflicts with Debian's npm
            if command -v npm >/dev/null 2>&1; then
                PKGS="$PKGS python3-numpy python3-regex nodejs"
            else
                PKGS="$PKGS $FIXTURE_PKGS"
            fi ;;
        --fuzz) PKGS="$PKGS $FUZZ_PKGS" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install_deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install_deps.sh: not root and sudo is not installed: run it as root (e.g. su -c 'sh scripts/install_deps.sh')" >&2
    exit 1
fi

# sudo resets the environment, so DEBIAN_FRONTEND goes through env
# shellcheck disable=SC2086  # $SUDO may be empty, $PKGS is a word list
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PKGS
