#!/usr/bin/env bash
# Every systemd unit and drop-in bootstrap renders, in both flavors and every role, passes
# `systemd-analyze verify`; the only complaints allowed are executables this test machine
# lacks (kubelet-wrapper, rkt, kubelet, kubeca, etcd). Kubeconfigs load in kubectl.
source "$(dirname "$0")/bootstrap_lib.sh"

command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (scripts/install-deps.sh)"
command -v kubectl >/dev/null || fail "kubectl is missing (scripts/install-deps.sh)"

render() {  # render FLAVOR ROLE NODE
  local flavor=$1 role=$2 node=$3 root="$WORK/$1-$2"
  "$KUBECA" bootstrap "$role" --config "$WORK/$flavor.yaml" --pki "$WORK/pki-$flavor" \
    --root "$root" ${node:+--node "$node"} >/dev/null
  echo "$root"
}

make_config "$WORK/coreos-2016.yaml" coreos-2016
make_config "$WORK/modern.yaml" modern
"$KUBECA" init --config "$WORK/coreos-2016.yaml" --pki "$WORK/pki-coreos-2016" >/dev/null
"$KUBECA" init --config "$WORK/modern.yaml" --pki "$WORK/pki-modern" >/dev/null

verified=0
for flavor in coreos-2016 modern; do
  for role in master worker etcd; do
    node=""
    [ "$role" = worker ] && node=coreos2
    root=$(render "$flavor" "$role" "$node")
    sysdir="$root/etc/systemd/system"
    # A drop-in is verified through its unit; a stub stands in for units the host ships.
    for d in "$sysdir"/*.d; do
      [ -d "$d" ] || continue
      unit=$(basename "$d" .d)
      if [ ! -f "$sysdir/$unit" ]; then
        printf '[Unit]\nDescription=stub for %s\n[Service]\nExecStart=/bin/true\n' "$unit" >"$sysdir/$unit"
      fi
    done
    for unit in "$sysdir"/*.service "$sysdir"/*.timer; do
      [ -f "$unit" ] || continue
      out=$(cd "$sysdir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$unit" 2>&1 || true)
      # Only absent executables of the real host are excused, each named.
      rest=$(echo "$out" | grep -v -E "(Command|Executable) (/opt/bin/kubelet-wrapper|/usr/bin/rkt|/usr/bin/kubelet|/usr/local/bin/kubeca|/usr/bin/etcd)( is not executable| not found|: No such file)" \
        | grep -v -E "Unit (kubelet|docker|flanneld|etcd2|containerd)\.service not found" \
        | grep -v -E "^$" || true)
      if [ -n "$rest" ]; then
        echo "$out" >&2
        fail "systemd-analyze verify $flavor/$role $(basename "$unit")"
      fi
      verified=$((verified + 1))
    done
  done
done
[ "$verified" -ge 15 ] || fail "only $verified units verified"
# The modern master runs the signing service (verified above); the seed's master does not.
[ -f "$WORK/modern-master/etc/systemd/system/kubeca-serve.service" ] \
  || fail "modern master: no kubeca-serve.service"
[ ! -e "$WORK/coreos-2016-master/etc/systemd/system/kubeca-serve.service" ] \
  || fail "coreos-2016 master: kubeca-serve.service rendered"

# A unit with a real mistake is caught: the check can fail.
printf '[Service]\nExecStart=/bin/true\nestart=always\n' >"$WORK/bad.service"
if ! (cd "$WORK" && systemd-analyze verify --man=no "$WORK/bad.service" 2>&1) | grep -q "Unknown key 'estart'"; then
  fail "systemd-analyze did not flag the seed's estart typo"
fi

# Kubeconfigs bootstrap renders parse as kubectl reads them.
[ "$(kubectl config view --kubeconfig "$WORK/coreos-2016-worker/etc/kubernetes/worker-kubeconfig.yaml" \
  -o jsonpath='{.users[0].user.client-certificate}')" = /etc/kubernetes/ssl/worker.pem ] \
  || fail "worker-kubeconfig.yaml"
[ "$(kubectl config view --kubeconfig "$WORK/modern-worker/etc/kubernetes/kubelet.conf" \
  -o jsonpath='{.contexts[0].context.user}')" = system:node:coreos2 ] || fail "kubelet.conf"

# From any folder: the templates are inside the binary.
dry=$(cd / && "$KUBECA" bootstrap addons --config "$WORK/modern.yaml" --pki "$WORK/pki-modern" \
  --root "$WORK/anywhere" --dry-run)
echo "$dry" | grep -q "^create    /etc/kubernetes/addons/coredns.yaml" \
  || fail "bootstrap from / did not find its templates: $dry"
[ ! -e "$WORK/anywhere" ] || fail "--dry-run wrote files"
echo "ok: $verified units verified"
