#!/usr/bin/env python3
"""Writes the fuzzer's corpus of builder attributes (tests/fuzz-corpus/attrs-*/) from real
derivations: the structured attributes of every derivation of the example image with every
content argument (OCI format, so that oci-layout and sbom are there too), of the same image in
Docker's format, and of an index over it, as `nix show-derivation` gives them, with the
`outputs` map and, where the derivation exports one, a reference graph added the way Nix adds
them when it builds (the packages must be built: run the tests once). Run it after changing what build-image.nix or build-index.nix pass:

    tools/attrs-corpus.py        # needs nix-instantiate and the static tools (target/nix-test-tools)
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "target/nix-test-tools")
IMAGE = """(import ./tests/nix/contents-image.nix {{
  tools = {tools}; packages = ''["busybox", "hello"]''; format = "{fmt}"; {extra}
}})"""


def graph(roots):
    """The reference graph of `roots` as exportReferencesGraph writes it (the roots must be built)."""
    out = subprocess.run(["nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive",
                          "--closure-size"] + sorted(set(roots)), check=True, capture_output=True, text=True).stdout
    keep = ("path", "narHash", "narSize", "references", "closureSize")
    return sorted(({k: p[k] for k in keep} for p in json.loads(out)), key=lambda p: p["path"])


def drvs(expr):
    """Every derivation the expression's outputs need, that runs one of our programs."""
    out = subprocess.run(["nix-instantiate", "--option", "substituters", "", "--expr", expr],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    closure = subprocess.run(["nix-store", "-qR"] + out, check=True, capture_output=True, text=True).stdout.split()
    closure = [p for p in closure if p.endswith(".drv")]
    shown = json.loads(subprocess.run(["nix", "--extra-experimental-features", "nix-command", "show-derivation"] + closure,
                                      check=True, capture_output=True, text=True).stdout)
    for d in shown.values():
        program = os.path.basename(d["builder"])
        if "__json" not in d["env"] or program not in ("layer-hash", "group-layers"):
            continue
        attrs = json.loads(d["env"]["__json"])
        attrs["outputs"] = {o: v["path"] for o, v in d["outputs"].items()}
        for name, roots in attrs.get("exportReferencesGraph", {}).items():
            attrs[name] = graph(roots)
        yield program, attrs


def main():
    if not os.path.isdir(TOOLS):
        sys.exit(f"{TOOLS} is missing: run the tests once (they build the static tools)")
    seen = {}
    exprs = [IMAGE.format(tools=TOOLS, fmt="oci", extra='sbom = true; annotations = { "org.example.a" = "b"; };'),
             IMAGE.format(tools=TOOLS, fmt="docker", extra="")]
    exprs.append("({0}).grouping".format(exprs[0]))
    exprs.append("[ ({0}).ociLayout ({0}).sbom ({0}).stream ({0}).layout ]".format(exprs[0]))
    exprs.append("[ ({0}).stream ({0}).layout ]".format(exprs[1]))
    exprs.append(IMAGE.format(tools=TOOLS, fmt="docker", extra="").replace('["busybox", "hello"]', '["nosuch"]'))
    exprs.append(f"(import ./build-index.nix {{ name = \"i\"; tools = {TOOLS}; images = [ {exprs[0]} ]; }}).ociLayout")
    exprs.append(f"(import ./build-index.nix {{ name = \"i\"; tools = {TOOLS}; images = [ {exprs[0]} ]; }})")
    for e in exprs:
        for program, attrs in drvs(e):
            kind = attrs.get("mode", "group-layers")
            key = (program, kind, attrs.get("compression"), attrs.get("format"))
            seen.setdefault(key, attrs)
    # Modes no derivation of ours uses, but a builder may: as a user's derivation would set them.
    for mode, attrs in {
        "hash": {"files": ["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-layer.tar.gz"]},
        "load-archive": {"script": "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-stream"},
    }.items():
        attrs.update(mode=mode, name=mode, system="x86_64-linux", outputs={"out": "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-" + mode})
        seen[("layer-hash", mode, None, None)] = attrs
    for (program, kind, compression, fmt), attrs in sorted(seen.items(), key=lambda kv: str(kv[0])):
        parser = "attrs-group-layers" if program == "group-layers" else "attrs-layer-hash"
        d = os.path.join(ROOT, "tests/fuzz-corpus", parser)
        os.makedirs(d, exist_ok=True)
        name = "-".join(x for x in [kind, compression, fmt] if x) + ".json"
        with open(os.path.join(d, name), "w") as f:
            json.dump(attrs, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{parser}/{name}", file=sys.stderr)


main()
