# Shared by the cluster-PKI integration tests: source it, never run it (the test CMake skips
# lib.sh). Gives a private temporary folder $T, assertions that count failures, and helpers
# that read certificates with openssl, gnutls' certtool and kubectl.
set -Eeuo pipefail
: "${KUBECA:?KUBECA must name the kubeca binary}"
: "${KUBECA_SOURCE:?KUBECA_SOURCE must name the repository root}"
export LC_ALL=C
T=$(mktemp -d "${TMPDIR:-/tmp}/kubeca-it.XXXXXX")
trap 'rm -rf "$T"' EXIT
# A failing command outside an assertion stops the test with its line.
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND exited $?" >&2' ERR

FAILS=0
PASSES=0
fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}
pass() { PASSES=$((PASSES + 1)); }
finish() {
  echo "$PASSES checks passed, $FAILS failed"
  if [ "$FAILS" -ne 0 ]; then exit 1; fi
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  if [ "$2" == "$3" ]; then pass; else fail "$1: got [$2], want [$3]"; fi
}
# expect_match WHAT ACTUAL GLOB
expect_match() {
  # shellcheck disable=SC2053
  if [[ $2 == $3 ]]; then pass; else fail "$1: got [$2], want a match of [$3]"; fi
}
# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
  if [[ $2 == *"$3"* ]]; then pass; else fail "$1: [$3] not in [$2]"; fi
}
expect_not_contains() {
  if [[ $2 != *"$3"* ]]; then pass; else fail "$1: [$3] should not be in [$2]"; fi
}
# expect_ok WHAT CMD...: the command succeeds.
expect_ok() {
  local what=$1
  shift
  if "$@" >"$T/.out" 2>&1; then pass; else fail "$what: $* failed: $(head -c 600 "$T/.out")"; fi
}
expect_fails() {
  local what=$1
  shift
  if "$@" >"$T/.out" 2>&1; then fail "$what: $* succeeded"; else pass; fi
}

# kc RC ARGS...: runs kubeca; sets OUT, ERR, RC; fails the check unless it exits RC.
kc() {
  local want=$1
  shift
  RC=0
  "$KUBECA" "$@" >"$T/.stdout" 2>"$T/.stderr" || RC=$?
  # shellcheck disable=SC2034 # read by the tests
  OUT=$(cat "$T/.stdout")
  ERR=$(cat "$T/.stderr")
  if [ "$RC" -eq "$want" ]; then
    pass
  else
    fail "kubeca $* exited $RC, want $want; stderr: $ERR"
  fi
}

# must_kc RC ARGS...: kc, and the test stops here when the exit code is not RC.
must_kc() {
  kc "$@"
  [ "$RC" -eq "$1" ] || {
    finish
    exit 1
  }
}

# expect_one_error_line WHAT NEEDLE: ERR is one line, "kubeca: ..." containing NEEDLE.
expect_one_error_line() {
  expect_eq "$1: stderr lines" "$(printf '%s\n' "$ERR" | wc -l)" 1
  expect_match "$1: stderr" "$ERR" "kubeca: *"
  expect_contains "$1: stderr" "$ERR" "$2"
}

# make_config FLAVOR ALGO OUT [SED-EXPR...]: examples/FLAVOR.yaml with pki.key_algorithm ALGO,
# without its signer.store (init would record in /var/lib/kubeca): a test that wants a store
# names its own.
make_config() {
  local flavor=$1 algo=$2 out=$3
  shift 3
  sed -e "s/^\(  key_algorithm:\) [a-z0-9-]*/\1 $algo/" -e '/^  store: /d' \
    "$KUBECA_SOURCE/examples/$flavor.yaml" >"$out"
  grep -qE "^  key_algorithm: $algo( |\$)" "$out" || {
    echo "FAIL: make_config: no key_algorithm line in examples/$flavor.yaml" >&2
    exit 1
  }
  local e
  for e in "$@"; do sed -i -e "$e" "$out"; done
}

# ca_of NAME: the CA (file name without .pem) a certificate of a modern folder chains to.
ca_of() {
  case $1 in
    etcd/* | apiserver-etcd-client) echo etcd/ca ;;
    front-proxy-ca | front-proxy-client) echo front-proxy-ca ;;
    *) echo ca ;;
  esac
}

# tree_state DIR: mode, size and SHA-256 of every file, sorted: equal output, equal bytes.
tree_state() {
  (cd "$1" && find . -type f -printf '%m %s ' -exec sha256sum {} \; | sort -k4)
}

# describe_cert PEM: "subject=... | bc=... | ku=... | eku=... | san=..." from openssl, with
# "critical " before a critical extension's value and the SANs sorted.
describe_cert() {
  local line section="" subject="" bc="" ku="" eku="" san=""
  while IFS= read -r line; do
    case "$line" in
      subject=*) subject=${line#subject=} ;;
      "X509v3 Basic Constraints:"*)
        section="bc"
        [[ $line == *critical* ]] && bc="critical "
        ;;
      "X509v3 Key Usage:"*)
        section="ku"
        [[ $line == *critical* ]] && ku="critical "
        ;;
      "X509v3 Extended Key Usage:"*)
        section="eku"
        [[ $line == *critical* ]] && eku="critical "
        ;;
      "X509v3 Subject Alternative Name:"*) section="san" ;;
      *)
        line=${line#"${line%%[! ]*}"}
        case $section in
          bc) bc+=$line ;;
          ku) ku+=$line ;;
          eku) eku+=$line ;;
          san) san=$(tr ',' '\n' <<<"$line" | sed 's/^ *//' | sort | paste -sd, -) ;;
        esac
        ;;
    esac
  done < <(openssl x509 -in "$1" -noout -subject -nameopt RFC2253 \
    -ext basicConstraints,keyUsage,extendedKeyUsage,subjectAltName)
  echo "subject=$subject | bc=$bc | ku=$ku | eku=$eku | san=$san"
}

# expect_cert PEM GLOB: describe_cert matches.
expect_cert() {
  expect_match "$1" "$(describe_cert "$1")" "$2"
}

# verify_chain CA LEAF: openssl and gnutls both accept LEAF under CA, and openssl rejects it
# under an unrelated CA.
verify_chain() {
  local ca=$1 leaf=$2
  if openssl verify -x509_strict -CAfile "$ca" "$leaf" >"$T/.out" 2>&1; then
    pass
  else
    fail "openssl verify -CAfile $ca $leaf: $(cat "$T/.out")"
  fi
  cat "$leaf" "$ca" >"$T/.bundle.pem"
  if certtool --verify-chain --verify-profile=medium --infile "$T/.bundle.pem" >"$T/.out" 2>&1 &&
    grep -q "Chain verification output: Verified" "$T/.out"; then
    pass
  else
    fail "certtool --verify-chain $leaf + $ca: $(grep -i verif "$T/.out" | head -3)"
  fi
}

# stranger_ca: a CA kubeca did not make, for negative chain checks.
stranger_ca() {
  if [ ! -f "$T/stranger.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kubernetes-ca \
      -keyout "$T/stranger-key.pem" -out "$T/stranger.pem" -days 2 2>/dev/null
  fi
  echo "$T/stranger.pem"
}

# spki_pin PEM: kubeadm's discovery hash, computed by openssl.
spki_pin() {
  echo "sha256:$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
    sha256sum | cut -d' ' -f1)"
}
