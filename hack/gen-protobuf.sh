#!/usr/bin/env bash
# Generates what Rudder's protobuf codec (rudder-machinery's `protobuf` module) needs, from
# upstream's own files of the pinned release (the Go modules k8s.io/api, k8s.io/apimachinery,
# k8s.io/apiextensions-apiserver and k8s.io/kube-aggregator, fetched from the Go module proxy
# into a cache). Writes, under apiserver/machinery/src/generated/:
#   - k8s.pb              a FileDescriptorSet (no source info) compiled with protox from the
#                         generated.proto files of every GA group version of k8s.io/api, of
#                         apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1, with the
#                         apimachinery files they import (meta/v1, runtime, schema, resource,
#                         intstr)
#   - k8s-pb-fields.json  the Go side of each message, read by reflection from the Go types
#                         themselves (the generated.proto files do not say it): per message and
#                         field number, the JSON name where it differs from the protobuf name,
#                         and whether the Go field is a pointer (p), omitempty (o), omitzero (z)
#                         or an inlined embedded struct (i); the messages that are named Go
#                         slices (`lists`, a message wrapping `repeated items`); the messages
#                         whose Go types marshal JSON themselves (`custom`); the messages that
#                         are kinds, registered in a scheme (`kinds`)
#
# Needs: curl, unzip, go, and protox (installed with `cargo install` when missing).
# Usage: hack/gen-protobuf.sh
set -euo pipefail

VERSION=v0.35.4
PROTOX_VERSION=0.10.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/apiserver/machinery/src/generated
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/rudder-gen
PROXY=${GOPROXY:-https://proxy.golang.org}
PROXY=${PROXY%%,*}
MODULES=(k8s.io/api k8s.io/apimachinery k8s.io/apiextensions-apiserver k8s.io/kube-aggregator)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if ! command -v protox >/dev/null; then
    echo "installing protox $PROTOX_VERSION" >&2
    cargo install --locked --version "$PROTOX_VERSION" --features bin protox
fi

# Unpack the .proto files of each module under $WORK/include/<module path>, the layout their
# imports ("k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto") expect.
mkdir -p "$CACHE" "$WORK/unzip" "$WORK/include/k8s.io"
for module in "${MODULES[@]}"; do
    zip=$CACHE/${module//\//_}-$VERSION.zip
    if [ ! -f "$zip" ]; then
        echo "fetching $PROXY/$module/@v/$VERSION.zip" >&2
        curl -sSfL -o "$zip.part" "$PROXY/$module/@v/$VERSION.zip"
        mv "$zip.part" "$zip"
    fi
    unzip -q -o "$zip" '*.proto' -d "$WORK/unzip"
    mv "$WORK/unzip/$module@$VERSION" "$WORK/include/$module"
done

# The GA group versions of k8s.io/api (a default v1.35 API server serves only those), the two
# groups that live in other modules, and the apimachinery messages served directly (Status,
# WatchEvent, DeleteOptions, PartialObjectMetadata; runtime.Unknown, the envelope).
cd "$WORK/include"
PROTOS=()
while IFS= read -r file; do PROTOS+=("$file"); done < <(
    find k8s.io/api -name generated.proto | grep -E '^k8s\.io/api/[a-z]+/v[0-9]+/generated\.proto$' | sort
)
PROTOS+=(
    k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/generated.proto
    k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/generated.proto
    k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
    k8s.io/apimachinery/pkg/runtime/generated.proto
)
protox --include-imports -I . -o "$OUT/k8s.pb" "${PROTOS[@]}"

# The Go packages of those files, for the reflection program below.
IMPORTS=""
ADDERS=""
i=0
for file in "${PROTOS[@]}"; do
    pkg=$(dirname "$file")
    case "$pkg" in k8s.io/apimachinery/*) continue ;; esac
    IMPORTS+="	p$i \"$pkg\""$'\n'
    ADDERS+="p$i.AddToScheme, "
    i=$((i + 1))
done

mkdir -p "$WORK/go"
cd "$WORK/go"
cat >go.mod <<EOF
module rudder.dev/genprotobuf

go 1.24

require (
	k8s.io/api $VERSION
	k8s.io/apiextensions-apiserver $VERSION
	k8s.io/apimachinery $VERSION
	k8s.io/kube-aggregator $VERSION
)
EOF
cat >main.go <<EOF
// Prints, for every Go type of the built-in API that has a protobuf message, how its fields
// map between protobuf and JSON (see hack/gen-protobuf.sh).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

$IMPORTS)

var adders = []func(*runtime.Scheme) error{$ADDERS}

type output struct {
	Version  string                       \`json:"version"\`
	Messages map[string]map[string]string \`json:"messages"\`
	Lists    []string                     \`json:"lists"\`
	Custom   []string                     \`json:"custom"\`
	Kinds    []string                     \`json:"kinds"\`
}

var (
	out       = output{Version: "$VERSION", Messages: map[string]map[string]string{}}
	seen      = map[reflect.Type]bool{}
	lists     = map[string]bool{}
	custom    = map[string]bool{}
	marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
)

// messageName is the protobuf name go-to-protobuf gives a Go type.
func messageName(t reflect.Type) string {
	return strings.NewReplacer("/", ".", "-", "_").Replace(t.PkgPath()) + "." + t.Name()
}

// walkType visits the named types a field's type refers to.
func walkType(t reflect.Type, repeated bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		walk(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return
		}
		if !repeated && t.Name() != "" {
			lists[messageName(t)] = true
		}
		walkType(t.Elem(), false)
	case reflect.Map:
		walkType(t.Elem(), false)
	}
}

func walk(t reflect.Type) {
	if seen[t] || !strings.HasPrefix(t.PkgPath(), "k8s.io/") {
		return
	}
	seen[t] = true
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) {
		custom[messageName(t)] = true
		return
	}
	fields := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ptag, ok := f.Tag.Lookup("protobuf")
		jtag, hasJSON := f.Tag.Lookup("json")
		jparts := strings.Split(jtag, ",")
		if !ok || ptag == "-" {
			if hasJSON && jparts[0] == "-" || f.Anonymous && f.Type.Name() == "TypeMeta" {
				continue
			}
			fmt.Fprintf(os.Stderr, "note: %s.%s has no protobuf field\n", t, f.Name)
			continue
		}
		var number, protoName string
		repeated := false
		for j, part := range strings.Split(ptag, ",") {
			switch {
			case j == 1:
				number = part
			case part == "rep":
				repeated = true
			case strings.HasPrefix(part, "name="):
				protoName = strings.TrimPrefix(part, "name=")
			}
		}
		flags := ""
		if f.Type.Kind() == reflect.Pointer {
			flags += "p"
		}
		for _, opt := range jparts[1:] {
			switch opt {
			case "omitempty":
				flags += "o"
			case "omitzero":
				flags += "z"
			}
		}
		jsonName := jparts[0]
		if jsonName == "" && f.Anonymous {
			flags += "i"
		} else {
			if jsonName == "" {
				jsonName = f.Name
			}
			if jsonName != protoName {
				flags += "=" + jsonName
			}
		}
		fields[number] = flags
		walkType(f.Type, repeated)
	}
	out.Messages[messageName(t)] = fields
}

func main() {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		panic(err)
	}
	for _, add := range adders {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	kinds := map[string]bool{}
	for gvk, t := range scheme.AllKnownTypes() {
		if gvk.Version != runtime.APIVersionInternal {
			walk(t)
			kinds[messageName(t)] = true
		}
	}
	for name := range kinds {
		out.Kinds = append(out.Kinds, name)
	}
	sort.Strings(out.Kinds)
	for name := range lists {
		out.Lists = append(out.Lists, name)
	}
	for name := range custom {
		out.Custom = append(out.Custom, name)
	}
	sort.Strings(out.Lists)
	sort.Strings(out.Custom)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
EOF
GOFLAGS=-mod=mod GOPROXY=$PROXY go mod tidy >&2
GOFLAGS=-mod=mod GOPROXY=$PROXY go run . >"$OUT/k8s-pb-fields.json"

echo "wrote $OUT/k8s.pb ($(wc -c <"$OUT/k8s.pb") bytes) and $OUT/k8s-pb-fields.json" >&2
