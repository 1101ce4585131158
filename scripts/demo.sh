#!/usr/bin/env bash
# Installs dependencies, builds kubeca and runs `kubeca demo` in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kubeca
exec build/kubeca demo "$@"
