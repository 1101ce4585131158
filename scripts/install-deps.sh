#!/usr/bin/env bash
# Installs every Debian package that kubeca's build, tests and benchmarks need (as root).
set -euo pipefail
packages=(
  g++ cmake make pkg-config clang-format
  libbotan-2-dev botan libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  nlohmann-json3-dev libyaml-cpp-dev libboost-program-options-dev libgtest-dev
  libboost-dev  # Boost.Beast and Boost.Asio (header-only): the signing service's transport
  libsqlite3-dev sqlite3 libkainjow-mustache-dev
  openssl gnutls-bin kubectl etcd-server etcd-client systemd curl
  golang-cfssl wrk strace util-linux  # strace: the order of init's syncs and renames
  nodejs python3  # bootstrap tests: npm schema validation, free ports
  python3-prometheus-client  # serve_metrics: /metrics parsed by a parser kubeca did not write
  python3-cryptography  # ha_failure: the join driver's keys and CSRs, certificates read back
  help2man man-db  # the man page, built from the commands' --help, and its test
  prometheus  # promtool: manifests/monitoring/'s rules and a live /metrics (monitoring.sh)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
