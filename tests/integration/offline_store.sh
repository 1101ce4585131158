#!/usr/bin/env bash
# Offline certificates are first-class: init, issue and certs renew record every leaf in the
# store cluster.yaml names, so revoke --serial and the CRL work for them, and the cluster CA's
# leaves name the service's CRL. Stores are never made by the commands that read them, and a
# store belongs to one CA. Checked with sqlite3 and openssl.
source "$(dirname "$0")/lib.sh"

serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
crl_dp() { openssl x509 -in "$1" -noout -ext crlDistributionPoints 2>/dev/null | sed -n 's/^ *URI://p'; }
# absent WHAT PATH...: none of the paths exists.
absent() {
  local what=$1 p
  shift
  for p in "$@"; do
    if [ -e "$p" ]; then
      fail "$what: $p exists"
      return
    fi
  done
  pass
}
# sql QUERY: against the test's store.
sql() { sqlite3 "$DB" "$1"; }

P=$T/pki
DB=$T/state/kubeca.db
STORE=sqlite:$DB
URL=https://192.168.24.11:8443/v1/crl
make_config modern ecdsa-p256 "$T/cluster.yaml" "s|^\(  url: .*\)|\1\n  store: $STORE|"
grep -q "^  store: $STORE\$" "$T/cluster.yaml" || {
  echo "FAIL: no store line in the config" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------
# init records every leaf before writing it; CAs are not records.
must_kc 0 init --config "$T/cluster.yaml" --pki "$P"
expect_eq "store made by init, private" "$(stat -c %a "$DB" 2>&1)" 600
leaves=0
while IFS= read -r pem; do
  name=${pem#"$P/"}
  name=${name%.pem}
  if openssl x509 -in "$pem" -noout -ext basicConstraints | grep -q "CA:TRUE"; then
    expect_eq "CA $name not recorded" "$(sql "select count(*) from certificates where serial = '$(serial_of "$pem")'")" 0
    expect_eq "CA $name has no CRL DP" "$(crl_dp "$pem")" ""
    continue
  fi
  leaves=$((leaves + 1))
  serial=$(serial_of "$pem")
  expect_eq "$name recorded by init" "$(sql "select requester || ' ' || status from certificates where serial = '$serial'")" "init good"
  expect_eq "$name record holds its PEM" "$(sql "select pem from certificates where serial = '$serial'")" "$(cat "$pem")"
  if [ "$(ca_of "$name")" = ca ]; then
    expect_eq "$name names the CRL" "$(crl_dp "$pem")" "$URL"
  else
    expect_eq "$name (not of the cluster CA) names no CRL" "$(crl_dp "$pem")" ""
  fi
done < <(find "$P" -name '*.pem' ! -name '*-key.pem' | sort)
expect_eq "every leaf is recorded, nothing else" "$(sql "select count(*) from certificates")" "$leaves"
expect_eq "apiserver profile recorded" "$(sql "select profile from certificates where serial = '$(serial_of "$P/apiserver.pem")'")" apiserver
expect_eq "store bound to the CA" "$(sql "select value from meta where key = 'ca_pin'")" "$(spki_pin "$P/ca.pem")"
# A second run changes nothing, in the folder or the store.
before=$(tree_state "$P")
kc 0 init --config "$T/cluster.yaml" --pki "$P"
expect_eq "re-init: folder unchanged" "$(tree_state "$P")" "$before"
expect_eq "re-init: no new records" "$(sql "select count(*) from certificates")" "$leaves"

# revoke --serial on an init-issued certificate, and the store's CRL lists it.
api=$(serial_of "$P/apiserver.pem")
kc 0 revoke --serial "$api" --reason keyCompromise --store "$STORE" --pki "$P"
kc 0 crl --pem --out "$T/crl.pem" --store "$STORE" --pki "$P"
expect_ok "CRL verifies against ca.pem" openssl crl -in "$T/crl.pem" -CAfile "$P/ca.pem" -noout
crl_text=$(openssl crl -in "$T/crl.pem" -noout -text | tr '[:upper:]' '[:lower:]')
expect_contains "CRL lists the init-issued apiserver" "$crl_text" "serial number: $api"
expect_contains "with its reason" "$crl_text" "key compromise"

# ---------------------------------------------------------------------------------------
# issue records too (the store exists now) and names the CRL.
kc 0 issue kubelet --config "$T/cluster.yaml" --pki "$P" --name w9 --ip 192.168.24.50 --out "$T/w9"
w9=$(serial_of "$T/w9.pem")
expect_eq "issue recorded" "$(sql "select requester || ' ' || profile from certificates where serial = '$w9'")" "issue kubelet"
expect_eq "issued leaf names the CRL" "$(crl_dp "$T/w9.pem")" "$URL"

# certs renew with the config: recorded (profile kept from the old record), names the CRL.
kc 0 certs renew apiserver --pki "$P" --config "$T/cluster.yaml"
new=$(serial_of "$P/apiserver.pem")
expect_eq "renewal recorded" "$(sql "select requester || ' ' || profile from certificates where serial = '$new'")" "certs-renew apiserver"
expect_eq "renewed leaf names the CRL" "$(crl_dp "$P/apiserver.pem")" "$URL"
# Without the config: the store is not touched, and the CRL DP the certificate had stays.
count=$(sql "select count(*) from certificates")
kc 0 certs renew scheduler --pki "$P"
expect_eq "renewal without config records nothing" "$(sql "select count(*) from certificates")" "$count"
expect_eq "renewal without config keeps the CRL DP" "$(crl_dp "$P/scheduler.pem")" "$URL"

# ---------------------------------------------------------------------------------------
# A mistyped --store: exit 2, one line, nothing made (not the file, not its folder).
TYPO=$T/typo/kubeca.db
for cmd in "crl --out $T/typo.crl --pki $P" "revoke --serial $w9 --pki $P" "token list" \
  "token revoke abcdef" "token create --node w9 --ip 192.168.24.50"; do
  # shellcheck disable=SC2086 # the words of the command
  kc 2 $cmd --store "sqlite:$TYPO"
  expect_eq "$cmd: one line" "$ERR" "kubeca: no store at $TYPO (kubeca serve or kubeca init creates it)"
  absent "$cmd: nothing made" "$T/typo"
done
absent "no CRL for a store that is not there" "$T/typo.crl"
# issue and certs renew with a config naming an absent store: nothing issued.
sed "s|$STORE|sqlite:$TYPO|" "$T/cluster.yaml" >"$T/typo.yaml"
kc 2 issue kubelet --config "$T/typo.yaml" --pki "$P" --name w8 --ip 192.168.24.51 --out "$T/w8"
expect_contains "issue: absent store" "$ERR" "no store at $TYPO"
absent "issue: nothing written" "$T/w8.pem" "$T/w8-key.pem" "$T/typo"
before=$(tree_state "$P")
kc 2 certs renew all --pki "$P" --config "$T/typo.yaml"
expect_eq "renew: absent store, folder unchanged" "$(tree_state "$P")" "$before"

# ---------------------------------------------------------------------------------------
# A store belongs to its CA: another CA is refused, naming both pins, changing nothing.
make_config modern ecdsa-p256 "$T/other.yaml"
must_kc 0 init --config "$T/other.yaml" --pki "$T/other"
pin=$(spki_pin "$P/ca.pem")
other=$(spki_pin "$T/other/ca.pem")
count=$(sql "select count(*) from certificates")
kc 2 crl --out "$T/other.crl" --store "$STORE" --pki "$T/other"
expect_one_error_line "crl with another CA" "$pin"
expect_contains "crl with another CA names it" "$ERR" "$other"
absent "no CRL of another CA" "$T/other.crl"
kc 2 revoke --serial "$w9" --store "$STORE" --pki "$T/other"
expect_one_error_line "revoke with another CA" "$other"
expect_eq "w9 still good" "$(sql "select status from certificates where serial = '$w9'")" good
kc 2 issue kubelet --config "$T/cluster.yaml" --pki "$T/other" --name w7 --ip 192.168.24.52 --out "$T/w7"
expect_one_error_line "issue with another CA" "$other"
absent "issue: nothing of another CA" "$T/w7.pem" "$T/w7-key.pem"
# init of a new folder (a new CA) against the store: refused before anything is written.
kc 2 init --config "$T/cluster.yaml" --pki "$T/fresh"
expect_one_error_line "init of a new CA" "$pin"
absent "init of a new CA: nothing written" "$T/fresh"
# Bounded: a serve that took the store would run until stopped.
RC=0
timeout 20 "$KUBECA" serve --config "$T/cluster.yaml" --pki "$T/other" --listen 127.0.0.1:0 \
  --audit-log "$T/audit" >/dev/null 2>"$T/.stderr" || RC=$?
ERR=$(cat "$T/.stderr")
expect_eq "serve with another CA: exit" "$RC" 2
expect_one_error_line "serve with another CA" "$other"
expect_eq "the refusals recorded nothing" "$(sql "select count(*) from certificates")" "$count"
expect_eq "still bound to its CA" "$(sql "select value from meta where key = 'ca_pin'")" "$pin"

# A store of the previous schema (version 1, no CA) opens, migrates, and is bound on first use.
V1=$T/v1.db
sqlite3 "$V1" "CREATE TABLE certificates (serial TEXT PRIMARY KEY NOT NULL,
  profile TEXT NOT NULL, subject TEXT NOT NULL, sans TEXT NOT NULL, not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL, status TEXT NOT NULL, requester TEXT NOT NULL, pem TEXT NOT NULL,
  revoked_at INTEGER NOT NULL DEFAULT 0, reason INTEGER NOT NULL DEFAULT 0);
CREATE INDEX certificates_by_not_before ON certificates (not_before, serial);
CREATE TABLE tokens (id TEXT PRIMARY KEY NOT NULL, secret_hash TEXT NOT NULL, node TEXT NOT NULL,
  ips TEXT NOT NULL, profile TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, uses_allowed INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0);
PRAGMA user_version = 1; PRAGMA application_id = 1802855011;"
kc 0 crl --out "$T/v1.crl" --store "sqlite:$V1" --pki "$P"
expect_eq "version 1 store migrated" "$(sqlite3 "$V1" "pragma user_version")" 4
expect_eq "version 1 store bound to the CA" \
  "$(sqlite3 "$V1" "select value from meta where key = 'ca_pin'")" "$pin"
kc 2 crl --out "$T/v1-other.crl" --store "sqlite:$V1" --pki "$T/other"
expect_one_error_line "version 1 store, then another CA" "$other"

# A store that cannot be opened stops init before it writes anything.
touch "$T/afile"
sed "s|$STORE|sqlite:$T/afile/kubeca.db|" "$T/cluster.yaml" >"$T/bad.yaml"
kc 1 init --config "$T/bad.yaml" --pki "$T/never"
expect_one_error_line "init with a store that cannot be opened" "cannot open store sqlite:$T/afile/kubeca.db"
absent "init with a bad store: nothing written" "$T/never"

finish
