#!/usr/bin/env bash
# Helpers for the bootstrap_*.sh integration tests (sourced, not registered as a test).
set -euo pipefail

: "${KUBECA:?KUBECA must name the kubeca binary}"
: "${KUBECA_SOURCE:?KUBECA_SOURCE must name the source tree}"

WORK=$(mktemp -d /tmp/kubeca-bootstrap-it.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A TCP port nobody listens on, on address $1 (default 127.0.0.1).
free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' \
    "${1:-127.0.0.1}"
}

# A PKI made fast (P-256) from an example config with the values given as sed expressions.
# make_config OUT EXAMPLE [SED-EXPR...]
make_config() {
  local out=$1 example=$2
  shift 2
  cp "$KUBECA_SOURCE/examples/$example.yaml" "$out"
  # No signer.store: init would record in /var/lib/kubeca.
  sed -i -e 's/key_algorithm: .*/key_algorithm: ecdsa-p256/' -e '/^  store: /d' "$out"
  for e in "$@"; do sed -i "$e" "$out"; done
}

# The ExecStart= of a unit file, continuation lines joined, as one line.
unit_exec_start() {
  awk '/^ExecStart=/{on=1; sub(/^ExecStart=/, "")} on{line=line $0; if ($0 !~ /\\$/) {print line; exit} sub(/\\$/, "", line)}' "$1"
}

# Waits until "$@" succeeds, up to $TRIES times half a second apart.
wait_for() {
  local tries=${TRIES:-40}
  until "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.5
  done
}
