#!/usr/bin/env python3
"""Generates Rudder's tables of built-in Kubernetes APIs from upstream's own files.

Reads, from the k8s.io/kubernetes module of the pinned release (fetched from the Go module
proxy into a cache):
  - api/discovery/*.json          the discovery documents of a real API server
  - api/openapi-spec/swagger.json the OpenAPI v2 spec
and, from the k8s-openapi crate the workspace depends on, which Rust type implements each
definition. Writes, under apiserver/machinery/src/generated/:
  - resources.rs  every served group/version/resource: kind, scope, verbs, short names,
                  categories, singular name, subresources, storage version hash
  - kinds.rs      a macro listing (group, version, kind) => k8s-openapi type
  - schema.json   per definition: property shapes, patch strategies, merge keys, list and
                  map types (the facts strategic merge patch and apply need); and the
                  definition of every group/version/kind

Only the versions a default v1.35 API server enables are generated: the GA ones.
Usage: hack/gen-apis.py   (then cargo fmt is not needed: the output is formatted)
"""

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

    print(f"{len(groups)} groups, {len(resources)} resources, {len(kinds) - len(missing)} typed kinds",
          file=sys.stderr)
    if missing:
        print("kinds without a k8s-openapi type (served without typed normalization): "
              + ", ".join(missing), file=sys.stderr)


if __name__ == "__main__":
    main()
