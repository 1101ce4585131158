#!/usr/bin/env bash
# What an installed kubeca brings: version, the man page help2man made from the commands'
# own --help (rendered by man), `cmake --install`, and bash completion.
source "$(dirname "$0")/lib.sh"

B=$(dirname "$KUBECA")  # the build folder
kc 0 version
expect_match "version" "$OUT" "kubeca [0-9]*.[0-9]*.[0-9]*"
version=$OUT
kc 0 --version
expect_eq "--version" "$OUT" "$version"
kc 2 version extra
expect_one_error_line "version extra" "unexpected argument"

# The commands, as the binary lists them.
commands=$("$KUBECA" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z]*\) .*/\1/p')
expect_contains "commands listed" "$commands" "completion"

# The man page renders and names every command, with its own help text.
if [ -f "$B/kubeca.1" ]; then
  pass
else
  fail "no $B/kubeca.1 (is help2man installed?)"
fi
page=$(MANWIDTH=120 man -l "$B/kubeca.1" 2>"$T/man.err")
expect_eq "man: no warnings" "$(cat "$T/man.err")" ""
expect_contains "man: NAME" "$page" "the certificate authority of a Kubernetes cluster"
for c in $commands; do
  expect_match "man names $c" "$page" "*"$'\n'"   $c"$'\n'"*"
done
expect_contains "man: certs' own help" "$page" "kubeca certs ca-hash --pki DIR"
expect_contains "man: token's own help" "$page" "--print-join-command"

# cmake --install puts the binary and the page in place.
cmake --install "$B" --prefix "$T/prefix" >"$T/install.out" 2>&1 || fail "cmake --install: $(cat "$T/install.out")"
[ -x "$T/prefix/bin/kubeca" ] && pass || fail "no bin/kubeca installed"
cmp -s "$T/prefix/share/man/man1/kubeca.1" "$B/kubeca.1" && pass || fail "no share/man/man1/kubeca.1"
cmp -s "$T/prefix/share/kubeca/monitoring/kubeca-alerts.yaml" "$KUBECA_SOURCE/manifests/monitoring/kubeca-alerts.yaml" && pass || fail "no share/kubeca/monitoring/kubeca-alerts.yaml"
expect_eq "installed binary runs" "$("$T/prefix/bin/kubeca" --version)" "$version"

# Bash completion, generated from the command table.
kc 0 completion bash
printf '%s\n' "$OUT" >"$T/completion.bash"
complete_words() { # complete_words WORD...: what bash offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kubeca; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$T/completion.bash" "$@"
}
PATH=$(dirname "$KUBECA"):$PATH
expect_eq "kubeca cer" "$(complete_words kubeca cer)" "certs"
expect_eq "kubeca to" "$(complete_words kubeca to)" "token"
expect_eq "kubeca certs re" "$(complete_words kubeca certs re)" "renew"
expect_eq "kubeca ca p" "$(complete_words kubeca ca p)" "pin"
expect_eq "kubeca token create --print" "$(complete_words "$KUBECA" token --print)" "--print-join-command"
expect_eq "complete is registered" "$(bash -c 'source "$1"; complete -p kubeca' _ "$T/completion.bash")" \
  "complete -o filenames -F _kubeca kubeca"
kc 2 completion zsh
expect_one_error_line "completion zsh" "unsupported shell"
kc 2 completion
expect_one_error_line "completion, no shell" "needs one shell"

finish
