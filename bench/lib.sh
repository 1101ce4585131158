# Shared by the bench/*/run.sh scripts: source it, never run it.

# children_cpu FILE: the CPU seconds (user + sys) of the shell's finished children, read from
# a file the shell's `times` wrote. `times` must run in the shell itself (`times >FILE`):
# in a $(...) subshell it counts only that subshell's children.
children_cpu() {
  awk 'NR == 2 { s = 0
    for (i = 1; i <= NF; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
    printf "%.3f", s }' "$1"
}
