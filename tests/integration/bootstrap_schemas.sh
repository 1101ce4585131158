#!/usr/bin/env bash
# Every manifest bootstrap renders parses as YAML and validates against the Kubernetes
# schemas (npm kubernetes-models 4.5.1, which carries the v1.32 API objects, and
# @kubernetes-models/validate). The packages are installed once into the build tree; if
# npm fails, the test fails.
source "$(dirname "$0")/bootstrap_lib.sh"

NPM_DIR="$(dirname "$KUBECA")/npm-bootstrap"
if [ ! -f "$NPM_DIR/.installed-4.5.1" ]; then
  mkdir -p "$NPM_DIR"
  npm install --no-audit --no-fund --loglevel=error --prefix "$NPM_DIR" \
    kubernetes-models@4.5.1 @kubernetes-models/validate@4.0.0 js-yaml@4.1.0 >&2 \
    || fail "npm install of the schema packages failed"
  touch "$NPM_DIR/.installed-4.5.1"
fi
export NODE_PATH="$NPM_DIR/node_modules"
VALIDATE="$KUBECA_SOURCE/tests/integration/bootstrap_schemas.js"

make_config "$WORK/coreos-2016.yaml" coreos-2016
make_config "$WORK/modern.yaml" modern
files=()
for flavor in coreos-2016 modern; do
  "$KUBECA" init --config "$WORK/$flavor.yaml" --pki "$WORK/pki-$flavor" >/dev/null
  for role in master worker etcd addons; do
    node=""
    [ "$role" = worker ] && node=coreos2
    "$KUBECA" bootstrap "$role" --config "$WORK/$flavor.yaml" --pki "$WORK/pki-$flavor" \
      --root "$WORK/$flavor-$role" ${node:+--node "$node"} >/dev/null
  done
  while IFS= read -r f; do files+=("$f"); done < <(find "$WORK/$flavor-"* -name '*.yaml' -not -path '*/etc/kubeca/*' | sort)
done
[ "${#files[@]}" -ge 15 ] || fail "only ${#files[@]} YAML files rendered"

# The CNI config is JSON.
for f in $(find "$WORK" -name '10-calico.conf'); do
  node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$f" || fail "$f is not JSON"
done

out=$(node "$VALIDATE" "${files[@]}") || { echo "$out" >&2; fail "schema validation"; }
echo "$out"
count=${out%% objects valid*}
[ "$count" -ge 18 ] || fail "only $count objects validated"

# The validator can fail: a wrong type and an unknown kind are both caught.
cat >"$WORK/bad.yaml" <<'BAD'
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: x
    image: y
    ports:
    - containerPort: https
---
apiVersion: extensions/v1beta1
kind: ThirdPartyResource
metadata: {name: gone}
BAD
if bad=$(node "$VALIDATE" "$WORK/bad.yaml" 2>&1); then fail "an invalid Pod validated"; fi
echo "$bad" | grep -q "containerPort must be integer" || fail "no type error in: $bad"
echo "$bad" | grep -q "no schema for kind ThirdPartyResource" || fail "no kind error in: $bad"
