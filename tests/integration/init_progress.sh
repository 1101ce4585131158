#!/usr/bin/env bash
# Progress on a terminal: `kubeca init` with many workers redraws one stderr line in place
# (keys made, certificates signed, files written) when stderr is a terminal, and prints
# nothing more than before when it is not. `bootstrap --dry-run` ends with the counts of
# files to create, change and keep, checked against a tree made for it.
source "$(dirname "$0")/lib.sh"
HERE=$(dirname "$0")

# 40 more workers: 49 certificates, each with its key, and the service-account key.
make_config modern ecdsa-p256 "$T/c.yaml"
extra=$(for i in $(seq 0 39); do printf '  - {name: w%d, ip: 10.9.0.%d}\\n' "$i" $((i + 10)); done)
sed -i "/^  - {name: coreos4/a\\
${extra%\\n}" "$T/c.yaml"
grep -q "w39" "$T/c.yaml" || fail "the config has no 40 workers"

# Not a terminal: nothing on stderr, no control character on stdout.
kc 0 init --config "$T/c.yaml" --pki "$T/plain"
expect_eq "no TTY: stderr is empty" "$(wc -c <"$T/.stderr")" 0
expect_fails "no TTY: no \\r or escape on stdout" grep -qP '[\r\x1b]' "$T/.stdout"
plain_out=$OUT
files=$(grep -c '^\[created\] ' <<<"$plain_out")
keys=$(grep -c -- '-key.pem$\|/sa.key$' <<<"$plain_out")
certs=$(($(grep -c '^\[created\] .*\.pem$' <<<"$plain_out") - $(grep -c -- '-key.pem$' <<<"$plain_out")))
expect_contains "no TTY: the summary" "$plain_out" "$files files created, 0 kept"
expect_eq "keys: one per certificate and sa.key" "$keys" $((certs + 1))

# A terminal: the line is drawn, redrawn with \r, reaches every total, and is cleared.
tty=$(python3 "$HERE/progress_tty.py" "$T/tty.out" "$KUBECA" init --config "$T/c.yaml" --pki "$T/tty") ||
  fail "init on a TTY failed: $tty"
echo "terminal got ${#tty} characters: ${tty:0:160}..."
expect_contains "TTY: keys reach their total" "$tty" "keys $keys/$keys, "
expect_contains "TTY: certificates reach theirs" "$tty" "certificates $certs/$certs, "
expect_contains "TTY: files reach theirs" "$tty" "files $files/$files"
draws=$(grep -o '\\r\\x1b\[K' <<<"$tty" | wc -l)
check_draws=$([ "$draws" -ge 4 ] && echo yes || echo "no ($draws)")
expect_eq "TTY: redrawn in place (\\r, clear line) several times" "$check_draws" yes
expect_match "TTY: the line is cleared at the end" "$tty" "*\\\\r\\\\x1b\\[K'"
expect_not_contains "TTY: no newline on stderr" "$tty" '\n'
# stdout is the same as without a terminal (but for the folder's name and the time).
norm() { sed -e "s|$1|PKI|" -e 's/in [0-9]* ms/in N ms/' "$2"; }
expect_eq "TTY: stdout as without one" "$(norm "$T/tty" "$T/tty.out")" "$(norm "$T/plain" <(printf '%s\n' "$plain_out"))"
# Nothing to do: nothing drawn.
tty=$(python3 "$HERE/progress_tty.py" "$T/tty2.out" "$KUBECA" init --config "$T/c.yaml" --pki "$T/tty")
expect_eq "TTY, nothing to make: nothing drawn" "$tty" "b''"

# bootstrap --dry-run: counts against a known tree.
dry() { "$KUBECA" bootstrap worker --config "$T/c.yaml" --pki "$T/plain" --node w1 --root "$T/root" --dry-run; }
out=$(dry)
planned=$(grep -c '^create ' <<<"$out")
expect_eq "dry-run on an empty root: all to create" "$(tail -1 <<<"$out")" "$planned to create, 0 to change, 0 to keep"
kc 0 bootstrap worker --config "$T/c.yaml" --pki "$T/plain" --node w1 --root "$T/root"
out=$(dry)
expect_eq "dry-run after the run: all to keep" "$(tail -1 <<<"$out")" "0 to create, 0 to change, $planned to keep"
# One file removed, one chmod-ed, and a config change that rewrites the kubelet's config.
rm "$T/root/etc/kubernetes/pki/ca.crt"
chmod 0600 "$T/root/etc/kubeca/ca.env"
sed -i 's/dns_service_ip: .*/dns_service_ip: 10.3.0.53/' "$T/c.yaml"
out=$(dry)
expect_eq "dry-run: one to create, two to change" "$(tail -1 <<<"$out")" "1 to create, 2 to change, $((planned - 3)) to keep"
expect_eq "the create line is the removed file" "$(grep '^create ' <<<"$out" | cut -c11- | cut -d' ' -f1)" /etc/kubernetes/pki/ca.crt
expect_eq "the mode line is the chmod-ed file" "$(grep '^mode ' <<<"$out" | cut -c11- | cut -d' ' -f1)" /etc/kubeca/ca.env
expect_eq "the update line is the kubelet config" "$(grep '^update ' <<<"$out" | cut -c11- | cut -d' ' -f1)" /var/lib/kubelet/config.yaml
# Applied, the counts are true: then all is kept again.
kc 0 bootstrap worker --config "$T/c.yaml" --pki "$T/plain" --node w1 --root "$T/root"
expect_eq "after the run: all kept" "$(dry | tail -1)" "0 to create, 0 to change, $planned to keep"
finish
