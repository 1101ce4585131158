# Shared by the bench/*/run.sh scripts: source it, never run it.

# children_cpu FILE: the CPU seconds (user + sys) of the shell's finished children, read from
# a file the shell's `times` wrote. `times` must run in the shell itself (`times >FILE`):
# in a $(...) subshell it counts only that subshell's children.
children_cpu() {
  awk 'NR == 2 { s = 0
    for (i = 1; i <= NF; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
    printf "%.3f", s }' "$1"
}

# bench_free_port: a TCP port nothing listens on, on 127.0.0.1.
bench_free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
  done
}

# bench_wait_up PID URL: until URL answers over TLS (any status), or the process died (1).
bench_wait_up() {
  local pid=$1 url=$2 i
  for i in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { echo "server $pid exited" >&2; return 1; }
    if curl -sk -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.05
  done
  echo "server $pid does not answer on $url" >&2
  return 1
}

# Peak RSS in KiB (VmHWM), and CPU seconds (user + system) used so far, of a process.
bench_peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
bench_cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
