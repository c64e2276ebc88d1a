#!/usr/bin/env python3
"""Generates Rudder's tables of built-in Kubernetes APIs from upstream's own files.

Reads, from the k8s.io/kubernetes module of the pinned release (fetched from the Go module
proxy into a cache):
  - api/discovery/*.json          the discovery documents of a real API server
  - api/openapi-spec/swagger.json the OpenAPI v2 spec
  - api/openapi-spec/v3/*.json    the OpenAPI v3 documents, one per path
and, from the k8s-openapi crate the workspace depends on, which Rust type implements each
definition. Writes, under apiserver/machinery/src/generated/:
  - resources.rs  every served group/version/resource: kind, scope, verbs, short names,
                  categories, singular name, subresources, storage version hash
  - kinds.rs      a macro listing (group, version, kind) => k8s-openapi type
  - schema.json   per definition: property shapes, patch strategies, merge keys, list and
                  map types (the facts strategic merge patch and apply need); and the
                  definition of every group/version/kind
  - openapi/      the OpenAPI documents served at /openapi/v2 (v2.json.gz) and /openapi/v3/<path>
                  (one <path with / as __>.json.gz each), minified and gzip-compressed, and
                  documents.rs, their table (path, SHA-512 hash, embedded bytes)

Only the versions a default v1.35 API server enables are generated: the GA ones.
Usage: hack/gen-apis.py   (then cargo fmt is not needed: the output is formatted)
Then run hack/gen-openapi-protobuf.sh: it converts the new v2 document to its protobuf form
(a test fails while the two disagree).
"""

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import urllib.request
import zipfile

KUBERNETES_VERSION = "v1.35.4"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "apiserver", "machinery", "src", "generated")
OPENAPI_OUT = os.path.join(OUT, "openapi")
# Non-API paths whose OpenAPI documents are served besides api, apis and their groups and
# versions. Upstream also documents /logs, /.well-known/openid-configuration and
# /openid/v1/jwks; Rudder does not serve those (yet), so their documents are left out.
OPENAPI_OTHER_PATHS = ["version"]
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rudder-gen")
PROXY = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0]


def module_zip():
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"kubernetes-{KUBERNETES_VERSION}.zip")
    if not os.path.exists(path):
        url = f"{PROXY}/k8s.io/kubernetes/@v/{KUBERNETES_VERSION}.zip"
        print(f"fetching {url}", file=sys.stderr)
        with urllib.request.urlopen(url) as resp, open(path + ".part", "wb") as out:
            out.write(resp.read())
        os.rename(path + ".part", path)
    return zipfile.ZipFile(path)


def read_json(archive, name):
    prefix = f"k8s.io/kubernetes@{KUBERNETES_VERSION}/"
    with archive.open(prefix + name) as f:
        return json.load(io.TextIOWrapper(f, encoding="utf-8"))


def is_ga(version):
    return re.fullmatch(r"v\d+", version) is not None


def discovery_file(group, version):
    return f"api/discovery/api__{version}.json" if group == "" else f"api/discovery/apis__{group}__{version}.json"


def rust_str(s):
    return json.dumps(s)


def rust_strs(items):
    return "&[" + ", ".join(rust_str(i) for i in items) + "]"


def k8s_openapi_types():
    """Maps OpenAPI definition names to k8s-openapi Rust paths (for the v1_35 feature)."""
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked"], cwd=ROOT))
    pkg = next(p for p in meta["packages"] if p["name"] == "k8s-openapi")
    src = os.path.join(os.path.dirname(pkg["manifest_path"]), "src", "v1_35")
    types = {}
    for dirpath, _, files in os.walk(src):
        for file in files:
            if not file.endswith(".rs") or file == "mod.rs":
                continue
            path = os.path.join(dirpath, file)
            with open(path, encoding="utf-8") as f:
                first = f.readline()
            m = re.match(r"// Generated from definition (\S+)", first)
            if not m:
                continue
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            kind = m.group(1).rsplit(".", 1)[1]
            types[m.group(1)] = "k8s_openapi::" + "::".join(rel[:-1]) + "::" + kind
    return types


def gvk_definitions(swagger):
    out = {}
    for name, definition in swagger["definitions"].items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def property_facts(prop):
    """The compact shape of one property."""
    facts = {}
    ref = prop.get("$ref")
    typ = prop.get("type")
    if ref:
        facts["t"] = "o"
        facts["r"] = ref.rsplit("/", 1)[1]
    elif typ == "array":
        facts["t"] = "a"
        items = prop.get("items", {})
        if "$ref" in items:
            facts["r"] = items["$ref"].rsplit("/", 1)[1]
        else:
            facts["p"] = items.get("type", "")
    elif typ == "object" and "additionalProperties" in prop:
        facts["t"] = "m"
        value = prop["additionalProperties"]
        if "$ref" in value:
            facts["r"] = value["$ref"].rsplit("/", 1)[1]
        elif value.get("type") == "array":
            facts["p"] = "array"
        else:
            facts["p"] = value.get("type", "")
    else:
        facts["t"] = "p"
        facts["p"] = typ or ""
        if prop.get("format"):
            facts["f"] = prop["format"]
    for key, short in [
        ("x-kubernetes-patch-strategy", "ps"),
        ("x-kubernetes-patch-merge-key", "mk"),
        ("x-kubernetes-list-type", "lt"),
        ("x-kubernetes-list-map-keys", "lk"),
        ("x-kubernetes-map-type", "mt"),
    ]:
        if key in prop:
            facts[short] = prop[key]
    return facts


def schema_facts(swagger):
    out = {}
    for name, definition in sorted(swagger["definitions"].items()):
        entry = {"props": {}}
        for prop, spec in sorted(definition.get("properties", {}).items()):
            entry["props"][prop] = property_facts(spec)
        if "x-kubernetes-map-type" in definition:
            entry["mt"] = definition["x-kubernetes-map-type"]
        if definition.get("required"):
            entry["req"] = sorted(definition["required"])
        if definition.get("type") and definition["type"] != "object":
            entry["type"] = definition["type"]
        if "format" in definition:
            entry["format"] = definition["format"]
        out[name] = entry
    return out


def openapi_root(path):
    """The v3 document path ("api/v1", "apis/apps", "version") a v2 path belongs to."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        return "/".join(parts[:2])
    if parts[0] == "apis":
        return "/".join(parts[:3])
    return parts[0]


def json_refs(value, out):
    """Collects every "$ref" in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                out.add(item)
            else:
                json_refs(item, out)
    elif isinstance(value, list):
        for item in value:
            json_refs(item, out)
    return out


def filter_swagger(swagger, served):
    """The v2 spec with only the paths of served documents and the parameters and
    definitions they use (transitively)."""
    paths = {p: item for p, item in swagger["paths"].items() if openapi_root(p) in served}
    sections = {"definitions": set(), "parameters": set()}
    pending = list(json_refs(paths, set()))
    while pending:
        ref = pending.pop()
        section, name = ref[2:].split("/", 1)  # "#/definitions/NAME"
        if name in sections[section]:
            continue
        sections[section].add(name)
        pending.extend(json_refs(swagger[section][name], set()))
    out = {}
    for key, value in swagger.items():
        if key == "paths":
            value = paths
        elif key in sections:
            value = {name: item for name, item in value.items() if name in sections[key]}
        out[key] = value
    return out


def minify(document):
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def write_openapi(archive, swagger, groups):
    """Writes the served OpenAPI documents (see the module doc)."""
    served = ["api", "apis"] + list(OPENAPI_OTHER_PATHS)
    for group, versions in groups:
        prefix = "api" if group == "" else f"apis/{group}"
        if group != "":
            served.append(prefix)
        served.extend(f"{prefix}/{version}" for version in versions)
    # Upstream's index is a JSON object marshalled from a Go map: its keys are sorted.
    served.sort()

    prefix = f"k8s.io/kubernetes@{KUBERNETES_VERSION}/api/openapi-spec/v3/"
    upstream = sorted(n[len(prefix):-len("_openapi.json")].replace("__", "/")
                      for n in archive.namelist() if n.startswith(prefix) and n.endswith("_openapi.json"))
    missing = sorted(set(served) - set(upstream))
    if missing:
        sys.exit(f"no upstream OpenAPI v3 document for {missing}")

    os.makedirs(OPENAPI_OUT, exist_ok=True)
    documents = []
    for path in served:
        name = path.replace("/", "__")
        document = read_json(archive, f"api/openapi-spec/v3/{name}_openapi.json")
        documents.append((path, f"{name}.json.gz", minify(document)))
    documents.append(("", "v2.json.gz", minify(filter_swagger(swagger, set(served)))))

    written = set()
    for _, file, data in documents:
        with open(os.path.join(OPENAPI_OUT, file), "wb") as out:
            out.write(gzip.compress(data, compresslevel=9, mtime=0))
        written.add(file)
    for file in os.listdir(OPENAPI_OUT):
        if file.endswith(".json.gz") and file not in written:
            os.remove(os.path.join(OPENAPI_OUT, file))

    def entry(path, file, data, indent):
        return (f"Embedded::new(\n{indent}    {rust_str(path)},\n"
                f"{indent}    {rust_str(hashlib.sha512(data).hexdigest().upper())},\n"
                f"{indent}    {len(data)},\n"
                f"{indent}    include_bytes!({rust_str(file)}),\n{indent})")

    with open(os.path.join(OPENAPI_OUT, "documents.rs"), "w", encoding="utf-8") as out:
        out.write("//! Generated by hack/gen-apis.py from the OpenAPI documents of Kubernetes "
                  f"{KUBERNETES_VERSION}. Do not edit.\n\n")
        out.write("use super::Embedded;\n\n")
        out.write("/// The v3 documents (path, SHA-512 of the JSON, its length, gzip), in upstream's index order.\n")
        out.write(f"pub(super) static V3: [Embedded; {len(documents) - 1}] = [\n")
        for path, file, data in documents[:-1]:
            out.write("    " + entry(path, file, data, "    ") + ",\n")
        out.write("];\n\n")
        out.write("/// The v2 document.\n")
        out.write("pub(super) static V2: Embedded = " + entry(*documents[-1], "") + ";\n")

    total = sum(os.path.getsize(os.path.join(OPENAPI_OUT, f)) for f in written)
    print(f"{len(documents) - 1} OpenAPI v3 documents and the v2 document, {total} bytes compressed",
          file=sys.stderr)


def main():
    archive = module_zip()
    aggregated = read_json(archive, "api/discovery/aggregated_v2.json")
    legacy = read_json(archive, "api/discovery/api.json")
    swagger = read_json(archive, "api/openapi-spec/swagger.json")
    definitions = gvk_definitions(swagger)
    types = k8s_openapi_types()

    # Groups in upstream's discovery order, with their GA versions (preferred first).
    groups = [("", [v for v in legacy["versions"] if is_ga(v)])]
    for item in aggregated["items"]:
        versions = [v["version"] for v in item["versions"] if is_ga(v["version"])]
        if versions:
            groups.append((item["metadata"]["name"], versions))

    resources = []
    kinds = {}
    for group, versions in groups:
        for version in versions:
            doc = read_json(archive, discovery_file(group, version))
            main = {}
            for r in doc["resources"]:
                if "/" in r["name"]:
                    continue
                main[r["name"]] = {
                    "group": group, "version": version, "resource": r["name"], "kind": r["kind"],
                    "singular": r.get("singularName", ""), "namespaced": r["namespaced"],
                    "verbs": r["verbs"], "short_names": r.get("shortNames", []),
                    "categories": r.get("categories", []),
                    "storage_version_hash": r.get("storageVersionHash", ""), "subresources": [],
                }
                kinds[(group, version, r["kind"])] = True
            for r in doc["resources"]:
                if "/" not in r["name"]:
                    continue
                parent, sub = r["name"].split("/", 1)
                sub_group = r.get("group", group)
                sub_version = r.get("version", version)
                main[parent]["subresources"].append({
                    "name": sub, "kind": r["kind"], "group": sub_group, "version": sub_version,
                    "verbs": r["verbs"],
                })
                kinds[(sub_group, sub_version, r["kind"])] = True
            resources.extend(main.values())

    with open(os.path.join(OUT, "resources.rs"), "w", encoding="utf-8") as out:
        out.write("//! Generated by hack/gen-apis.py from the discovery documents of Kubernetes "
                  f"{KUBERNETES_VERSION}. Do not edit.\n\n")
        out.write("use crate::resources::{GroupInfo, ResourceInfo, SubresourceInfo};\n\n")
        out.write("/// Every API group served, in upstream's discovery order, with its versions (preferred first).\n")
        out.write("pub static GROUPS: &[GroupInfo] = &[\n")
        for group, versions in groups:
            out.write(f"    GroupInfo {{ name: {rust_str(group)}, versions: {rust_strs(versions)} }},\n")
        out.write("];\n\n")
        out.write("/// Every resource served, in upstream's discovery order.\n")
        out.write("pub static RESOURCES: &[ResourceInfo] = &[\n")
        for r in resources:
            out.write("    ResourceInfo {\n")
            for key in ["group", "version", "resource", "kind", "singular"]:
                out.write(f"        {key}: {rust_str(r[key])},\n")
            out.write(f"        namespaced: {'true' if r['namespaced'] else 'false'},\n")
            for key in ["verbs", "short_names", "categories"]:
                out.write(f"        {key}: {rust_strs(r[key])},\n")
            out.write(f"        storage_version_hash: {rust_str(r['storage_version_hash'])},\n")
            out.write("        subresources: &[\n")
            for s in r["subresources"]:
                out.write("            SubresourceInfo {\n")
                for key in ["name", "kind", "group", "version"]:
                    out.write(f"                {key}: {rust_str(s[key])},\n")
                out.write(f"                verbs: {rust_strs(s['verbs'])},\n")
                out.write("            },\n")
            out.write("        ],\n")
            out.write("    },\n")
        out.write("];\n")

    missing = []
    with open(os.path.join(OUT, "kinds.rs"), "w", encoding="utf-8") as out:
        out.write("//! Generated by hack/gen-apis.py: the k8s-openapi type of every built-in kind served, "
                  "including subresource kinds. Do not edit.\n\n")
        out.write("/// Calls `$callback!` with `(group, version, kind) => Type` for every kind.\n")
        out.write("macro_rules! for_each_builtin_kind {\n    ($callback:ident) => {\n        $callback! {\n")
        for (group, version, kind) in sorted(kinds):
            definition = definitions.get((group, version, kind))
            rust = types.get(definition) if definition else None
            if rust is None:
                missing.append(f"{group}/{version}/{kind}")
                continue
            out.write(f"            ({rust_str(group)}, {rust_str(version)}, {rust_str(kind)}) => {rust},\n")
        out.write("        }\n    };\n}\n")

    facts = {
        "definitions": schema_facts(swagger),
        "kinds": {f"{g}/{v}/{k}": name for (g, v, k), name in sorted(definitions.items())},
    }
    with open(os.path.join(OUT, "schema.json"), "w", encoding="utf-8") as out:
        json.dump(facts, out, separators=(",", ":"), sort_keys=True)
        out.write("\n")

    write_openapi(archive, swagger, groups)

    print(f"{len(groups)} groups, {len(resources)} resources, {len(kinds) - len(missing)} typed kinds",
          file=sys.stderr)
    if missing:
        print("kinds without a k8s-openapi type (served without typed normalization): "
              + ", ".join(missing), file=sys.stderr)


if __name__ == "__main__":
    main()
