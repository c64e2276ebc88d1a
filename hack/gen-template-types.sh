#!/bin/sh
# Regenerates reconcilers/src/generated/pod_template_types.json: the Go field table of
# core/v1 PodTemplateSpec that the deployment controller's template hash walks (upstream
# hashes the Go struct as go-spew prints it). Needs Go and the pinned k8s.io/api in the
# module cache or through the Go module proxy.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/hack/gen-template-types/main.go" "$work/"
cat > "$work/go.mod" <<'MOD'
module gentemplatetypes

go 1.24

require k8s.io/api v0.35.4
MOD
cd "$work"
GOFLAGS=-mod=mod go run . | python3 -c 'import json,sys; json.dump(json.load(sys.stdin), sys.stdout, sort_keys=True, separators=(",", ":"))' \
  > "$root/reconcilers/src/generated/pod_template_types.json"
