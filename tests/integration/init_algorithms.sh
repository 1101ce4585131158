#!/usr/bin/env bash
# `kubeca init` (modern flavor) with each of the six key algorithms: the key type and size
# openssl sees, the signature algorithm, key usage by key type, and chains that openssl and
# certtool accept. No workers, to keep the RSA runs short.
source "$(dirname "$0")/lib.sh"

LEAVES="apiserver admin signer kubelet-coreos1 kube-proxy controller-manager scheduler
apiserver-kubelet-client front-proxy-client etcd/server etcd/peer etcd/healthcheck-client
apiserver-etcd-client"

# algorithm NAME KEY-TEXT SIGNATURE KEY-USAGE
algorithm() {
  local algo=$1 key_text=$2 signature=$3 ku=$4 dir=$T/$1 f k
  make_config modern "$algo" "$T/$algo.yaml" '/^workers:/,/^pki:/{/^  - /d}' \
    's/^workers:.*/workers: []/'
  if [[ $algo == rsa-3072 || $algo == rsa-4096 ]]; then
    # Big RSA keys take seconds each: init makes the cluster CA's and the apiserver's itself
    # and finds openssl-made keys of the same size for the others (a key without its
    # certificate is used, not replaced).
    mkdir -p "$dir/etcd"
    for k in a b; do
      openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${algo#rsa-}" \
        -out "$T/$algo-$k.pem" 2>/dev/null
    done
    for f in front-proxy-ca etcd/ca; do install -m 600 "$T/$algo-a.pem" "$dir/$f-key.pem"; done
    for f in $LEAVES; do
      [[ $f == apiserver ]] || install -m 600 "$T/$algo-b.pem" "$dir/$f-key.pem"
    done
    install -m 600 "$T/$algo-b.pem" "$dir/sa.key"
    openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub"
  fi
  local started=$SECONDS
  must_kc 0 init --config "$T/$algo.yaml" --pki "$dir"
  echo "$algo: init took $((SECONDS - started)) s"
  expect_contains "$algo: summary" "$OUT" "(modern, $algo)"
  for f in ca front-proxy-ca etcd/ca $LEAVES; do
    expect_match "$algo: $f-key.pem" "$(openssl pkey -in "$dir/$f-key.pem" -noout -text |
      grep -E '^(Private-Key|NIST CURVE|ED25519)' | paste -sd' ' -)" "$key_text"
    expect_eq "$algo: $f-key.pem matches" "$(openssl pkey -in "$dir/$f-key.pem" -pubout)" \
      "$(openssl x509 -in "$dir/$f.pem" -noout -pubkey)"
  done
  for f in $LEAVES; do
    verify_chain "$dir/$(ca_of "$f").pem" "$dir/$f.pem"
    expect_contains "$algo: $f signature" "$(openssl x509 -in "$dir/$f.pem" -noout -text)" \
      "Signature Algorithm: $signature"
    expect_match "$algo: $f usages" "$(describe_cert "$dir/$f.pem")" "* | ku=critical $ku | eku=*"
  done
  expect_match "$algo: CA usages" "$(describe_cert "$dir/ca.pem")" \
    "* | bc=critical CA:TRUE* | ku=critical *Certificate Sign, CRL Sign | *"
  expect_eq "$algo: sa.pub is sa.key's" "$(openssl pkey -in "$dir/sa.key" -pubout)" \
    "$(cat "$dir/sa.pub")"
  expect_eq "$algo: kubectl reads admin.conf" "$(kubectl --kubeconfig "$dir/admin.conf" config \
    view --raw -o 'jsonpath={.users[0].user.client-certificate-data}' | base64 -d)" \
    "$(cat "$dir/admin.pem")"
}

RSA_KU="Digital Signature, Key Encipherment"
algorithm ecdsa-p256 "Private-Key: (256 bit) NIST CURVE: P-256" ecdsa-with-SHA256 \
  "Digital Signature"
algorithm ecdsa-p384 "Private-Key: (384 bit) NIST CURVE: P-384" ecdsa-with-SHA384 \
  "Digital Signature"
algorithm ed25519 "ED25519 Private-Key:" ED25519 "Digital Signature"
algorithm rsa-2048 "Private-Key: (2048 bit, 2 primes)" sha256WithRSAEncryption "$RSA_KU"
algorithm rsa-3072 "Private-Key: (3072 bit, 2 primes)" sha256WithRSAEncryption "$RSA_KU"
algorithm rsa-4096 "Private-Key: (4096 bit, 2 primes)" sha256WithRSAEncryption "$RSA_KU"

finish
