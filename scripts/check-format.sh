#!/usr/bin/env bash
# Fails when clang-format (Google style, 100 columns) would change a C++ file.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files '*.cc' '*.h' 2>/dev/null || find pki bootstrap cli tests -name '*.cc' -o -name '*.h'); do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "clang-format would change $f (run: clang-format -i $f)"
    bad=1
  fi
done
exit "$bad"
