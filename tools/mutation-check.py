#!/usr/bin/env python3
"""Breaks one property at a time on purpose and shows which tests catch it.

Each mutation below is one edit of the code (or, where the guard is in the test itself, of the
test) that breaks a property a test claims to guard. For each, in a scratch git worktree of HEAD,
the edit is applied, the named tests run, and the edit is reverted; the result is a Markdown
table of which tests failed. A mutation no test catches is a test that cannot fail.

  tools/mutation-check.py [NAME-SUBSTRING ...]   # all mutations, or those whose name matches

It needs what the tests need (Nix for the image tests). It takes a while: each mutation
rebuilds the crate in release mode. A mutation whose `old` text is no longer in the file is
reported as stale: update it with the code.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

# (name, file, old text, new text, cargo test arguments)
MUTATIONS = [
    # --- layering -------------------------------------------------------------------------------
    ("stable breaks ties by store path (hash) instead of name",
     "src/layering/stable/sets.rs",
     "pa.cmp(&pb).then_with(|| names[a as usize].cmp(names[b as usize])).then_with(|| closure.path(a).cmp(closure.path(b)))",
     "closure.path(a).cmp(closure.path(b))",
     ["--test", "layering_stable", "--test", "layering_contract"]),
    ("stable never labels a lone root `root`",
     "src/layering/stable/order.rs",
     "1 if cx.closure.roots.binary_search(&g.top).is_ok() => Reason::Root,",
     "1 if false => Reason::Root,",
     ["--test", "layering_stable"]),
    ("stable holds named roots apart as big (roots decide contents)",
     "src/layering/stable/big.rs",
     ".filter(|&i| size(i) * share * budget as u128 >= total)",
     ".filter(|&i| size(i) * share * budget as u128 >= total || closure.roots.contains(&i))",
     ["--test", "layering_stable"]),
    ("big paths held smallest first",
     "src/layering/stable/big.rs",
     "big.sort_unstable_by_key(|&i| (Reverse(size(i)), rank[i as usize]));",
     "big.sort_unstable_by_key(|&i| (size(i), rank[i as usize]));",
     ["--test", "layering_stable"]),
    ("dominators: reference cycles not noticed (one pass only)",
     "src/graph/dominators.rs",
     "1 => cyclic = true,",
     "1 => {}",
     ["--lib", "--test", "layering_contract"]),
    ("a reference cycle nothing reaches gets no root edge",
     "src/graph/dominators.rs",
     "while let Some(first) = reached.iter().position(|r| !r) {",
     "while let Some(first) = None::<usize> {",
     ["--test", "layering_contract"]),
    ("sketched closures: a path's own hash left out of its sketch",
     "src/layering/stable/sketch.rs",
     "Universe::Sketched => out.push(hash),",
     "Universe::Sketched => {}",
     ["--test", "layering_contract", "--test", "layering_stable"]),
    ("popularity-order breaks ties by reversed name",
     "src/research/peers.rs",
     "order.sort_by(|&a, &b| pop[b as usize].cmp(&pop[a as usize]).then_with(|| by_name(closure, a, b)));",
     "order.sort_by(|&a, &b| pop[b as usize].cmp(&pop[a as usize]).then_with(|| by_name(closure, b, a)));",
     ["--test", "layering_peers"]),
    ("auto-layer stops one primary early",
     "src/research/peers.rs",
     "if distinct(&next) > opts.budget {",
     "if distinct(&next) >= opts.budget {",
     ["--test", "layering_peers"]),
    ("layer-eval: the 90th percentile one sample low",
     "src/research/evaluate.rs",
     "let p90 = v[(v.len() * 9).div_ceil(10) - 1];",
     "let p90 = v[(v.len() * 9 / 10).saturating_sub(1)];",
     ["--test", "layering_peers"]),
    ("layer-eval: the floor counts the updated path only, not its dependents",
     "src/research/evaluate.rs",
     ".filter(|&(_, &c)| c).map(|(i, _)| closure.nodes[i].nar_size).sum();",
     ".filter(|&(i, &c)| c && i == v as usize).map(|(i, _)| closure.nodes[i].nar_size).sum();",
     ["--test", "layering_peers"]),
    ("layer-eval: storage counts each family image's layers as new",
     "src/research/evaluate.rs",
     "distinct.insert(paths(c, l).into_iter().map(str::to_owned).collect(), l.size);",
     "distinct.insert(vec![format!(\"{}{:p}\", l.size, l)], l.size);",
     ["--test", "layering_peers"]),
    ("chain floor computed above its limit",
     "src/research/chain_floor.rs",
     "if n > LIMIT || updates == 0 {",
     "if updates == 0 {",
     ["--lib", "chain_floor"]),
    # --- layer-hash -----------------------------------------------------------------------------
    ("a layer of no paths is written",
     "src/bin/layer-hash.rs",
     "if paths.is_empty() {",
     "if paths.is_empty() && false {",
     ["--test", "layer_hash"]),
    ("an image config that is not an object is taken as {}",
     "src/bin/layer-hash.rs",
     'other => Err(serde::de::Error::custom(format!("should be an attribute set (a JSON object), not {other}"))),',
     "_ => Ok(ImageConfig::default()),",
     ["--test", "layer_hash"]),
    ("a layout links blobs that do not exist",
     "src/manifest.rs",
     "std::fs::metadata(&loc.path).map_err(|source| Error::Read { path: loc.path.clone().into(), source })?;",
     "",
     ["--test", "layer_hash"]),
    ("an unreadable file is read as empty",
     "src/tarball.rs",
     "let mut f = File::open(source).map_err(rerr)?;",
     'let mut f = File::open(source).or_else(|_| File::open("/dev/null")).map_err(rerr)?;',
     ["--test", "layer_hash"]),
    ("a character device is packed as an empty file",
     "src/tarball.rs",
     "} else if ft.is_file() {",
     "} else if ft.is_file() || ft.is_char_device() {",
     ["--test", "layer_hash"]),
    ("md5 written without base64 padding, everywhere the crate computes it",
     "src/digest.rs",
     "general_purpose::STANDARD.encode",
     "general_purpose::STANDARD_NO_PAD.encode",
     ["--test", "layer_hash", "--test", "nix_image", "--", "manifest", "digests_agree"]),
    ("the fixture's chown fails (the owner variation would not vary)",
     "tests/layer_hash.rs",
     '.args(["-R", "-h", "12345:54321"])',
     '.args(["-R", "-h", "no-such-user-x:54321"])',
     ["--test", "layer_hash"]),
    # --- group-layers ---------------------------------------------------------------------------
    ("group-layers: --budget gets a default",
     "src/bin/group-layers.rs",
     '    #[arg(long, value_name = "N")]\n    budget: usize,',
     '    #[arg(long, value_name = "N", default_value_t = 95)]\n    budget: usize,',
     ["--test", "group_layers_cli"]),
    # --- Nix ------------------------------------------------------------------------------------
    ("layer derivations named after the image (no sharing across images)",
     "build-image.nix",
     'in run "layer-hash" "layer.tar${blobSuffix}" ({',
     'in run "layer-hash" "${baseName}-layer.tar${blobSuffix}" ({',
     ["--test", "nix_image", "images_with_common_dependencies"]),
    ("layers stamped with the build time (a one-job rebuild differs)",
     "src/tarball.rs",
     "Ok(pack(out, mtime, compression, |w| write_store_layer(w, store, &paths, &perms))?.0)",
     "Ok(pack(out, mtime + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1000, compression, |w| write_store_layer(w, store, &paths, &perms))?.0)",
     ["--test", "nix_image", "builds_from_nothing_with_two_jobs"]),
    # --- image contents (issue 19) --------------------------------------------------------------
    ("store paths named in imageConfig are not roots of the image",
     "build-image.nix",
     "exportReferencesGraph.graph = allContents ++ configRoots;",
     "exportReferencesGraph.graph = allContents;",
     ["--test", "nix_image", "content_arguments_change"]),
    ("a perms rule's mode is not applied",
     "src/perms.rs",
     "            meta.mode = mode;",
     "            let _ = mode;",
     ["--lib", "--test", "nix_image", "content_arguments_change"]),
    ("every layer gets every perms entry",
     "nix/perms.nix",
     "(filter (e: elem (pathOf e) contents) perms);",
     "perms;",
     ["--test", "nix_image", "content_arguments_change"]),
    ("/tmp without its sticky bit",
     "nix/accounts.nix",
     'tmpDir = if tmp == true then [ { path = "/tmp"; mode = "1777";',
     'tmpDir = if tmp == true then [ { path = "/tmp"; mode = "0777";',
     ["--test", "nix_image", "content_arguments_change"]),
    ("two users with one uid are accepted",
     "nix/accounts.nix",
     "(filter (p: (head p).uid == (elemAt p 1).uid) (pairs allUsers))",
     "(filter (p: false) (pairs allUsers))",
     ["--test", "nix_image", "content_argument_clashes"]),
    ("a declared directory silently replaces a package's symlink",
     "src/customisation.rs",
     "(Some(other), _) => return Err(clash(what, path, other)),",
     "(Some(_), _) => {}",
     ["--lib", "--test", "nix_image", "content_argument_clashes"]),
    ("the config's created left out",
     "src/manifest.rs",
     "        created: meta.created.clone(),",
     "        created: None,",
     ["--lib", "--test", "nix_image", "created_reaches"]),
    ("history entries top layer first",
     "build-image.nix",
     "history = storeHistory ++ [ customisationHistory ];",
     "history = [ customisationHistory ] ++ storeHistory;",
     ["--test", "engines", "docker"]),
    ("/etc/passwd in declaration order, not by id",
     "src/accounts.rs",
     "    users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));",
     "",
     ["--lib"]),
    # --- SBOMs and indexes (issue 20) ------------------------------------------------------------
    ("SBOM: each path's first reference dropped",
     "src/sbom.rs",
     "references: n.references.iter().map(|&r| r as usize).collect(),",
     "references: n.references.iter().skip(1).map(|&r| r as usize).collect(),",
     ["--test", "sbom", "real_closures"]),
    ("SBOM: Nix base32 read most significant digit last",
     "src/sbom.rs",
     "for (n, c) in s.bytes().rev().enumerate() {",
     "for (n, c) in s.bytes().enumerate() {",
     ["--lib", "--test", "sbom", "real_closures"]),
    ("SBOM: licenses of dependencies made up from the roots'",
     "src/sbom.rs",
     "licenses: known.get(&n.path).map(|k| k.licenses.clone()).unwrap_or_default(),",
     "licenses: known.values().next().map(|k| k.licenses.clone()).unwrap_or_default(),",
     ["--test", "sbom", "found_from_the_image_digest"]),
    ("index entries in the order given, not by platform",
     "src/index.rs",
     "    images.sort_by(|a, b| (&a.platform, &a.digests.sha256).cmp(&(&b.platform, &b.digests.sha256)));",
     "",
     ["--test", "index", "pushed_whole"]),
    ("build-index.nix accepts two images for one system",
     "build-index.nix",
     "(filter (p: elemAt systems (head p) == elemAt systems (elemAt p 1)) (pairs systems));",
     "(filter (p: false) (pairs systems));",
     ["--test", "index", "index_arguments"]),
    # --- rough use (issue 21) --------------------------------------------------------------------
    ("a builder mode missing from Mode::from_attrs",
     "src/inputs/layer_hash.rs",
     '            "sbom" => Mode::Sbom(SbomArgs { graph: a.path().to_path_buf(), ..a.input()? }),',
     "",
     ["--lib", "--test", "fuzz", "layer_hash_builder_attributes"]),
    ("load-archive takes any file for a load script",
     "src/archive.rs",
     '        if !(first.starts_with(b"#!") && first.ends_with(b" load-archive")) {',
     "        if false {",
     ["--test", "layer_hash", "bad_records"]),
    ("peak memory read as the memory held now (VmRSS), not the peak",
     "src/report.rs",
     'find_map(|l| l.strip_prefix("VmHWM:"))',
     'find_map(|l| l.strip_prefix("VmRSS:"))',
     ["--lib", "peak_memory"]),
    ("the remote-builder test lets the layers build locally",
     "tests/robustness.rs",
     '.args(["--max-jobs", "0", "--builders", &remote.builders()])',
     '.args(["--max-jobs", "2", "--builders", &remote.builders()])',
     ["--test", "robustness", "remote_builder"]),
]


def main():
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip()
    wanted = sys.argv[1:]
    chosen = [m for m in MUTATIONS if not wanted or any(w in m[0] for w in wanted)]
    scratch = tempfile.mkdtemp(prefix="mutation-check.")
    tree = os.path.join(scratch, "repo")
    subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", "-q", tree, "HEAD"], check=True)
    # ../shared beside the worktree, as beside the repository.
    shared = os.path.join(os.path.dirname(repo), "shared")
    if os.path.isdir(shared):
        os.symlink(shared, os.path.join(scratch, "shared"))
    # What tests/run.sh installs under target/ (the SBOM validators' venv, the arm64 busybox),
    # shared with the worktree: without them those tests skip, and a mutation looks missed.
    os.makedirs(os.path.join(tree, "target"), exist_ok=True)
    for fixture in ("validators", "arm64-busybox"):
        if os.path.isdir(os.path.join(repo, "target", fixture)):
            os.symlink(os.path.join(repo, "target", fixture), os.path.join(tree, "target", fixture))
    # Builds are kept between runs, beside the repository's own.
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    env.setdefault("CARGO_TARGET_DIR", os.path.join(repo, "target", "mutation-check"))
    env.pop("CI", None)
    rows = []
    try:
        for name, path, old, new, args in chosen:
            f = os.path.join(tree, path)
            text = open(f).read()
            if text.count(old) == 0:
                rows.append((name, path, "STALE: the text to mutate is gone"))
                continue
            open(f, "w").write(text.replace(old, new))
            print(f"mutation: {name} ({path}) ...", file=sys.stderr, flush=True)
            r = subprocess.run(["cargo", "test", "--release", "--no-fail-fast", *args], cwd=tree, env=env, capture_output=True, text=True)
            open(f, "w").write(text)
            failed = sorted(set(re.findall(r"^test (\S+) \.\.\. FAILED", r.stdout, re.M)))
            if r.returncode == 0:
                verdict = "MISSED"
            elif failed:
                verdict = "caught by " + ", ".join(f"`{t}`" for t in failed)
            elif "error[E" in r.stderr or "could not compile" in r.stderr:
                verdict = "does not compile: fix the mutation"
            else:
                binary = re.search(r"deps/(\w+?)-[0-9a-f]+` \((signal: \d+, SIG\w+|exit status: \d+)", r.stderr)
                how = f"`{binary.group(1)}` died, {binary.group(2)}" if binary else (r.stderr.strip().splitlines() or ["?"])[-1][:160]
                verdict = f"caught (a test binary failed: {how})"
            rows.append((name, path, verdict))
            print(f"  {verdict}", file=sys.stderr, flush=True)
    finally:
        subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", tree], check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    print("| mutation | file | result |\n|---|---|---|")
    for name, path, verdict in rows:
        print(f"| {name} | `{path}` | {verdict} |")
    return 1 if any(v == "MISSED" or v.startswith(("STALE", "does not")) for _, _, v in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
