#!/usr/bin/env bash
# The kubeca units that `bootstrap worker` renders call the real commands correctly. For a
# worker on loopback (master 127.0.0.1, worker 127.0.0.2) and a real `kubeca serve`, the
# Exec lines of kubeca-request.service and kubeca-renew.service run as systemd would run
# them: Environment=/EnvironmentFile= variables expanded, conditions checked, the host's
# paths moved under the rendered root. Then, in both flavors:
#  - the request writes a certificate with the node's subject and SANs, issued now (the
#    audit log has its serial), where kubelet.service and its kubeconfig read it;
#  - the renew exits 0 when not due (same serial, no hook) and with --force renews (a new
#    serial, the same names, the kubelet restart hook run), still where the kubelet reads;
#  - `bootstrap worker` re-run then (also --dry-run, --force) leaves the renewed pair alone;
#  - the units pass `systemd-analyze verify`;
#  - they list every signer.urls replica; the first is down, so each run fails over;
#  - the token is on no Exec line: not as written, not once the environment is expanded
#    (a command line is world-readable in /proc/PID/cmdline); kubeca reads KUBECA_TOKEN.
source "$(dirname "$0")/bootstrap_lib.sh"

for tool in openssl systemd-analyze kubectl; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh)"
done
NODE=n1
NODE_IP=127.0.0.2

# unit_run.py ROOT UNIT [ARG...]: runs UNIT's ExecStartPre/ExecStart/ExecStartPost as systemd
# would, with ARGs appended to ExecStart. Exit 77 when a Condition skips the unit; any key
# it does not model is an error, so a template change cannot slip past this runner.
cat >"$WORK/unit_run.py" <<'PY'
import os, re, shlex, subprocess, sys

root, unit, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
HOST_DIRS = ("/etc/", "/var/", "/run/")


def under_root(word):
    """The host's paths (also after --flag=) live under root; kubeca is the one under test."""
    if word == "/usr/local/bin/kubeca":
        return os.environ["KUBECA"]
    m = re.match(r"^(--[\w-]+=)?(/.*)$", word)
    if m and m.group(2).startswith(HOST_DIRS):
        return (m.group(1) or "") + root + m.group(2)
    return word


def read_unit(path):
    entries, section, line = [], None, ""
    for raw in open(path):
        raw = raw.rstrip("\n")
        if not line and (not raw.strip() or raw.lstrip()[0] in "#;"):
            continue
        if raw.endswith("\\"):
            line += raw[:-1] + " "
            continue
        line += raw
        if line.startswith("["):
            section = line.strip("[] ")
        else:
            key, value = line.split("=", 1)
            entries.append((section, key.strip(), value.strip()))
        line = ""
    return entries


def read_env_file(path):
    env = {}
    for raw in open(path):
        raw = raw.strip()
        if not raw or raw[0] in "#;":
            continue
        key, value = raw.split("=", 1)
        words = shlex.split(value)
        env[key.strip()] = words[0] if words else ""
    return env


def expand(word, env):
    """systemd: "$VAR" alone splits into words; "${VAR}" is replaced in place."""
    if "%" in word.replace("%%", ""):
        sys.exit(f"unit_run: specifier in {word!r} is not modelled")
    word = word.replace("%%", "%")
    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if m:
        return env.get(m.group(1), "").split()
    out = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda v: env.get(v.group(1), ""), word)
    return [out.replace("$$", "$")]


env, commands = {}, []
known = {"Type", "RemainAfterExit", "Environment", "EnvironmentFile", "ExecStartPre",
         "ExecStart", "ExecStartPost"}
for section, key, value in read_unit(unit):
    if section == "Unit" and key.startswith(("Condition", "Assert")):
        if key != "ConditionPathExists":
            sys.exit(f"unit_run: {key} is not modelled")
        negate = value.startswith("!")
        path = under_root(value.lstrip("!"))
        if os.path.lexists(path) == negate:
            print(f"skipped: {key}={value}", file=sys.stderr)
            sys.exit(77)
    elif section != "Service":
        continue
    elif key not in known:
        sys.exit(f"unit_run: [Service] {key} is not modelled")
    elif key == "Environment":
        for assignment in shlex.split(value):
            k, v = assignment.split("=", 1)
            env[k] = v
    elif key == "EnvironmentFile":
        path = under_root(value.lstrip("-"))
        if os.path.exists(path):
            env.update(read_env_file(path))
        elif not value.startswith("-"):
            sys.exit(f"unit_run: EnvironmentFile {path} is missing")
    elif key.startswith("Exec"):
        commands.append((key, value))

order = {"ExecStartPre": 0, "ExecStart": 1, "ExecStartPost": 2}
for key, line in sorted(commands, key=lambda c: order[c[0]]):
    prefix = re.match(r"^[-@:+!]*", line).group(0)
    argv = [under_root(w) for word in shlex.split(line[len(prefix):]) for w in expand(word, env)]
    if key == "ExecStart":
        argv += extra
    # The command line is world-readable (/proc/PID/cmdline, ps): never the token.
    token = env.get("KUBECA_TOKEN")
    if token and any(token in a or token.split(".")[-1] in a for a in argv):
        sys.exit(f"unit_run: {key} puts the bootstrap token on the command line")
    if not os.path.isabs(argv[0]) or not os.access(argv[0], os.X_OK):
        sys.exit(f"unit_run: {key} runs {argv[0]}, not an executable on this host")
    shown = " ".join(argv)
    if env.get("KUBECA_TOKEN"):
        shown = shown.replace(env["KUBECA_TOKEN"], "<token>")
    print(f"+ {key}: {shown}", file=sys.stderr)
    rc = subprocess.run(argv, env={**os.environ, **env}, cwd=root).returncode
    if rc != 0 and "-" not in prefix:
        sys.exit(rc)
PY

# A stand-in systemctl: the renew hook's `systemctl restart kubelet.service` is recorded.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "$*" >>"%s/systemctl.log"\n' "$WORK" >"$WORK/bin/systemctl"
chmod +x "$WORK/bin/systemctl"
: >"$WORK/systemctl.log"
run_unit() { PATH="$WORK/bin:$PATH" KUBECA="$KUBECA" python3 "$WORK/unit_run.py" "$@"; }

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
pubkey_of() { openssl x509 -in "$1" -noout -pubkey; }
hook_runs() { grep -c -x "restart kubelet.service" "$WORK/systemctl.log" || true; }
# audit_has LOG ACTION SERIAL [TOKEN_ID]: the signer logged that issuance.
audit_has() {
  python3 - "$@" <<'PY'
import json, sys
log, action, serial = sys.argv[1:4]
token_id = sys.argv[4] if len(sys.argv) > 4 else None
for line in open(log):
    e = json.loads(line)
    if (e["action"], e["serial"].lower(), e["result"]) == (action, serial, "issued") and \
            (token_id is None or e["token_id"] == token_id):
        sys.exit(0)
sys.exit(1)
PY
}

# A flag's value in the unit's ExecStart: flag_of UNIT --tls-cert-file
flag_of() { unit_exec_start "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }
# A kubeconfig field: kc_field FILE client-certificate
kc_field() {
  local jp
  case $2 in
    certificate-authority) jp='{.clusters[0].cluster.certificate-authority}' ;;
    *) jp="{.users[0].user.$2}" ;;
  esac
  kubectl config view --kubeconfig "$1" -o jsonpath="$jp"
}

# The paths, on the host, where the kubelet of ROOT reads its certificate, key and CA:
# "cert PATH" / "key PATH" / "ca PATH" lines, from kubelet.service and what it names.
kubelet_reads() {
  local root=$1 svc="$1/etc/systemd/system/kubelet.service" kc cfg
  kc=$(flag_of "$svc" --kubeconfig)
  [ -n "$kc" ] || fail "kubelet.service has no --kubeconfig"
  echo "cert $(kc_field "$root$kc" client-certificate)"
  echo "key $(kc_field "$root$kc" client-key)"
  echo "ca $(kc_field "$root$kc" certificate-authority)"
  local f
  f=$(flag_of "$svc" --tls-cert-file) && [ -n "$f" ] && echo "cert $f"
  f=$(flag_of "$svc" --tls-private-key-file) && [ -n "$f" ] && echo "key $f"
  cfg=$(flag_of "$svc" --config)
  if [ -n "$cfg" ] && [ -f "$root$cfg" ]; then  # KubeletConfiguration (modern)
    sed -n 's/^tlsCertFile: /cert /p; s/^tlsPrivateKeyFile: /key /p; s/^ *clientCAFile: /ca /p' \
      "$root$cfg"
  fi
}

# Every path the kubelet reads ($READS, from kubelet_reads) holds the certificate with
# SERIAL, its key, and the CA.
check_kubelet_files() {  # ROOT SERIAL PKI WHEN
  local root=$1 serial=$2 pki=$3 when=$4 kind path certs=0
  local cert_pub
  cert_pub=$(pubkey_of "$pki/ca.pem")
  while read -r kind path; do
    [ -n "$path" ] && [ -e "$root$path" ] || fail "$when: the kubelet reads $kind $path: absent"
    case $kind in
      cert)
        [ "$(serial_of "$root$path")" = "$serial" ] \
          || fail "$when: $path has serial $(serial_of "$root$path"), not $serial"
        certs=$((certs + 1))
        cert_pub=$(pubkey_of "$root$path")
        ;;
      key)
        [ "$(openssl pkey -in "$root$path" -pubout)" = "$cert_pub" ] \
          || fail "$when: $path is not the certificate's key"
        [ "$(stat -L -c %a "$root$path")" = 600 ] || fail "$when: $path is not 0600"
        ;;
      ca) cmp -s "$root$path" "$pki/ca.pem" || fail "$when: $path is not the cluster CA" ;;
    esac
  done < <(sort <<<"$READS")  # cert before key: the key is checked against it
  [ "$certs" -ge 1 ] || fail "$when: no certificate path found for the kubelet"
}

# The node's names: subject as the flavor's kubelet profile, SANs DNS:NODE and IP NODE_IP.
check_names() {  # CERT SUBJECT PKI
  local subject sans
  # The attributes, in any order (openssl prints them in the certificate's order).
  subject=$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//' |
    tr ',' '\n' | sort | paste -sd,)
  [ "$subject" = "$2" ] || fail "subject of $1 is $subject, not $2"
  sans=$(openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
  [ "$sans" = "DNS:$NODE,IPAddress:$NODE_IP" ] || fail "SANs of $1 are $sans"
  openssl verify -CAfile "$3/ca.pem" "$1" >/dev/null || fail "$1 does not verify against the CA"
}

verify_units() {  # ROOT: systemd-analyze verify, only the host's absent executables excused
  local sysdir="$1/etc/systemd/system" unit out rest
  local absent="(Command|Executable) "
  absent+="(/opt/bin/kubelet-wrapper|/usr/bin/kubelet|/usr/local/bin/kubeca)"
  absent+="( is not executable| not found|: No such file)"
  for unit in "$sysdir"/kubeca-request.service "$sysdir"/kubeca-renew.service \
    "$sysdir"/kubeca-renew.timer "$sysdir"/kubelet.service; do
    [ -f "$unit" ] || fail "$(basename "$unit") was not rendered"
    out=$(cd "$sysdir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$unit" 2>&1 ||
      true)
    rest=$(echo "$out" | grep -v -E "$absent" |
      grep -v -E "Unit (containerd|docker|flanneld)\.service not found" | grep -v -E "^$" || true)
    [ -z "$rest" ] || { echo "$out" >&2; fail "systemd-analyze verify $(basename "$unit")"; }
  done
  [ -f "$sysdir/kubelet.service.d/10-kubeca.conf" ] || fail "10-kubeca.conf was not rendered"
}

run_flavor() {  # FLAVOR SUBJECT (attributes sorted, comma-separated)
  local flavor=$1 subject=$2 dir="$WORK/$1" port dead root pki token pki_serial serial renewed
  mkdir -p "$dir"
  port=$(free_port)
  dead=$(free_port 127.0.0.9)  # a replica that is down: the units go on to the next
  root="$dir/root"
  pki="$dir/pki"
  cat >"$dir/cluster.yaml" <<YAML
cluster: {name: test, flavor: $flavor}
master: {host: 127.0.0.1, name: m1}
etcd: {endpoints: [https://127.0.0.1:2379]}
workers: [{name: $NODE, ip: $NODE_IP}]
pki: {key_algorithm: ecdsa-p256}
signer:
  url: "https://127.0.0.1:$port"
  urls: ["https://127.0.0.9:$dead", "https://127.0.0.1:$port"]
  store: "sqlite:$dir/kubeca.db"
YAML
  "$KUBECA" init --config "$dir/cluster.yaml" --pki "$pki" >/dev/null
  "$KUBECA" bootstrap worker --config "$dir/cluster.yaml" --pki "$pki" --root "$root" \
    --node "$NODE" >/dev/null
  verify_units "$root"
  local exec_token
  exec_token=$(grep -rE '^Exec[A-Za-z]*=.*(--token|KUBECA_TOKEN)' "$root/etc/systemd" || true)
  [ -z "$exec_token" ] || fail "$flavor: a unit puts the token on a command line: $exec_token"
  local request_unit="$root/etc/systemd/system/kubeca-request.service"
  local renew_unit="$root/etc/systemd/system/kubeca-renew.service"
  # Every replica of signer.urls, in order: the units fail over from the dead one below.
  for u in "$request_unit" "$renew_unit"; do
    [ "$(unit_exec_start "$u" | sed -n 's/.* --server \([^ ]*\) .*/\1/p')" = \
      "https://127.0.0.9:$dead,https://127.0.0.1:$port" ] \
      || fail "$flavor: $(basename "$u") does not list every signer URL: $(unit_exec_start "$u")"
  done

  # The pin bootstrap rendered is the CA's, as openssl computes it.
  local pin
  pin="sha256:$(openssl x509 -in "$pki/ca.pem" -pubkey -noout | openssl pkey -pubin -outform der |
    sha256sum | cut -d' ' -f1)"
  grep -qx "KUBECA_CA_HASH=$pin" "$root/etc/kubeca/ca.env" || fail "$flavor: ca.env has no $pin"

  # The operator's part: a token for this node, in /etc/kubeca/request.env.
  token=$("$KUBECA" token create --store "sqlite:$dir/kubeca.db" --node "$NODE" --ip "$NODE_IP" \
    2>/dev/null)
  [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "$flavor: token create printed $token"
  (umask 077 && echo "KUBECA_TOKEN=$token" >"$root/etc/kubeca/request.env")

  "$KUBECA" serve --config "$dir/cluster.yaml" --pki "$pki" --listen "127.0.0.1:$port" \
    --audit-log "$dir/audit.log" 2>"$dir/serve.err" &
  PIDS+=($!)
  TRIES=60 wait_for grep -q "serving on https://127.0.0.1:$port" "$dir/serve.err" \
    || { cat "$dir/serve.err" >&2; fail "$flavor: kubeca serve did not start on $port"; }

  # Boot with the certificate bootstrap copied from the PKI: the request leaves it be.
  READS=$(kubelet_reads "$root")
  pki_serial=$(serial_of "$root$(sed -n 's/^cert //p' <<<"$READS" | head -1)")
  local rc=0
  run_unit "$root" "$request_unit" >"$dir/request.out" 2>&1 || rc=$?
  local want=0
  [ "$flavor" = coreos-2016 ] && want=77  # ConditionPathExists=!worker.pem skips the unit
  [ "$rc" = "$want" ] \
    || fail "$flavor: request with a certificate there: rc $rc: $(<"$dir/request.out")"
  check_kubelet_files "$root" "$pki_serial" "$pki" "$flavor: kept"
  [ ! -s "$dir/audit.log" ] || fail "$flavor: the request asked the signer: $(<"$dir/audit.log")"

  # A node without its certificate: the request gets one from the signer.
  while read -r kind path; do
    [ "$kind" = ca ] || rm -f "$root$path"
  done <<<"$READS"
  run_unit "$root" "$request_unit" >"$dir/request.out" 2>&1 \
    || { cat "$dir/request.out" >&2; fail "$flavor: kubeca-request.service failed"; }
  local cert
  cert=$root$(sed -n 's/^cert //p' <<<"$READS" | head -1)
  [ -e "$cert" ] || fail "$flavor: no certificate at $cert after request: $(<"$dir/request.out")"
  serial=$(serial_of "$cert")
  [ "$serial" != "$pki_serial" ] || fail "$flavor: the request kept the PKI's certificate"
  check_names "$cert" "$subject" "$pki"
  check_kubelet_files "$root" "$serial" "$pki" "$flavor: requested"
  audit_has "$dir/audit.log" sign "$serial" "${token%%.*}" \
    || fail "$flavor: no issuance of $serial with the token in the audit log: $(<"$dir/audit.log")"
  ! grep -q -F "$token" "$dir/audit.log" "$dir/serve.err" "$dir/request.out" \
    || fail "$flavor: the token's secret was logged"

  # Not due: exit 0, nothing changes, the kubelet is not restarted.
  local hooks
  hooks=$(hook_runs)
  run_unit "$root" "$renew_unit" >"$dir/renew.out" 2>&1 \
    || { cat "$dir/renew.out" >&2; fail "$flavor: kubeca-renew.service failed when not due"; }
  grep -q "not due" "$dir/renew.out" || fail "$flavor: renew said: $(<"$dir/renew.out")"
  check_kubelet_files "$root" "$serial" "$pki" "$flavor: not due"
  [ "$(hook_runs)" = "$hooks" ] || fail "$flavor: the kubelet was restarted though nothing renewed"

  # Forced: a new serial, the same names, in the same places, and the kubelet restarted.
  run_unit "$root" "$renew_unit" --force >"$dir/renew.out" 2>&1 \
    || { cat "$dir/renew.out" >&2; fail "$flavor: kubeca-renew.service --force failed"; }
  renewed=$(serial_of "$cert")
  [ "$renewed" != "$serial" ] || fail "$flavor: --force kept serial $serial"
  check_names "$cert" "$subject" "$pki"
  check_kubelet_files "$root" "$renewed" "$pki" "$flavor: renewed"
  [ "$(hook_runs)" = $((hooks + 1)) ] || fail "$flavor: the hook did not restart the kubelet once"
  audit_has "$dir/audit.log" renew "$renewed" \
    || fail "$flavor: no renewal $renewed in the audit log"

  # Bootstrap again on the renewed node: the pair is kubeca-renew's now. Dry-run, a plain
  # run and --force all leave the renewed serial (and its symlinks) in place.
  local out
  out=$("$KUBECA" bootstrap worker --config "$dir/cluster.yaml" --pki "$pki" --root "$root" \
    --node "$NODE" --dry-run 2>&1) || fail "$flavor: bootstrap --dry-run after renewal: $out"
  ! grep -q "^conflict" <<<"$out" || fail "$flavor: --dry-run after renewal: $out"
  [ "$(grep -c "^kept .*: managed by kubeca-renew$" <<<"$out")" = 2 ] \
    || fail "$flavor: --dry-run does not name the node's pair as kept: $out"
  for force in "" --force; do
    out=$("$KUBECA" bootstrap worker --config "$dir/cluster.yaml" --pki "$pki" --root "$root" \
      --node "$NODE" $force 2>&1) || fail "$flavor: bootstrap $force after renewal: $out"
    grep -q ": 0 files changed," <<<"$out" || fail "$flavor: bootstrap $force changed: $out"
    [ "$(serial_of "$cert")" = "$renewed" ] \
      || fail "$flavor: bootstrap $force put serial $(serial_of "$cert") over $renewed"
    [ -L "$cert" ] || fail "$flavor: bootstrap $force replaced the symlink $cert"
    check_kubelet_files "$root" "$renewed" "$pki" "$flavor: bootstrap $force after renewal"
  done
  echo "ok: $flavor: requested $serial, renewed $renewed"
}

run_flavor modern "CN=system:node:$NODE,O=system:nodes"
run_flavor coreos-2016 "CN=$NODE"
echo "ok"
