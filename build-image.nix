# Builds a container image from Nix packages, laid out for a registry to serve straight from the
# store: the result is `manifest-output.json` (a Docker Image Manifest V2 schema 2 plus
# `layerLocations`, from each blob's digest to the store file holding it), with an attribute
# `layout` that lays the image out in skopeo's `dir:` format for pushing.
#
#   nix-build build-image.nix --argstr name hello --argstr packages '["hello"]'
#
# The work is done by two Rust programs used directly as Nix builders (no stdenv, no shell):
# `group-layers` groups the closure into layers, `layer-hash` writes and hashes each layer and the
# manifest. The only import-from-derivation is reading the grouping; every layer is then its own
# derivation, so a group of paths shared by two images is built once.
{
  # The package set in which `packages` are looked up; its host platform sets the image's
  # architecture. Default: <nixpkgs>.
  pkgs ? import <nixpkgs> { },
  # The image name (the repository part of `NAME:TAG`). Required.
  name,
  # The image tag. Default (null): the 32-character hash of the manifest-output.json store path,
  # so the same image always gets the same tag and a changed image a new one. It is available as
  # the result's `imageTag` attribute without building anything.
  tag ? null,
  # Store paths or derivations to put in the image, before those named in `packages`. Default: [].
  contents ? [ ],
  # Packages by attribute path in `pkgs`, as a JSON array in a string ('["hello", "xorg.xev"]').
  # A path that does not exist is retried with its top-level name matched case-insensitively
  # ("haskellpackages.stylish-haskell" finds haskellPackages.stylish-haskell; nested names stay
  # exact, since nested sets often hold names that differ only in case). Default: "[]".
  packages ? "[]",
  # The most layers the image may have, the customisation layer included. Default: 96.
  maxLayers ? 96,
  # Popularity data (Nixery's format, {"name-without-hash": count}) as a local file. Default: null.
  popularity ? null,
  # Or popularity data fetched by Nix from a URL, as the seed did; give `popularityHash` (sha256)
  # to make the fetch pure. Ignored when `popularity` is set. Default: null (no popularity data:
  # every path counts 1).
  popularityUrl ? null,
  # The sha256 of the file at `popularityUrl` (any format builtins.fetchurl accepts). Default: null.
  popularityHash ? null,
  # The layering strategy of group-layers (see `group-layers --help`). Default: null, the
  # program's default.
  strategy ? null,
  # The image config's `config` object (Cmd, Env, WorkingDir, ...). Default: {} (present but
  # empty, which Kubernetes requires).
  imageConfig ? { },
  # The programs: any derivation or path holding bin/group-layers and bin/layer-hash, such as a
  # directory of binaries built with cargo. Default: the ones default.nix builds from this
  # repository with `pkgs`.
  tools ? (import ./default.nix { inherit pkgs; }).tools,
  # The system the builders run on. Default: `pkgs`' build platform.
  buildSystem ? pkgs.stdenv.buildPlatform.system or builtins.currentSystem,
  ...
}:
let
  inherit (builtins)
    attrNames filter fromJSON hasAttr head isAttrs isList isString
    listToAttrs map replaceStrings split substring tail toJSON
    unsafeDiscardStringContext appendContext readFile;

  hostSystem = pkgs.stdenv.hostPlatform.system or pkgs.system or buildSystem;
  baseName = baseNameOf name;

  # --- Package lookup ----------------------------------------------------------------------------
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = replaceStrings upper lower;
  splitDots = s: filter isString (split "\\." s);

  # { found = true; value } or { found = false; }, following `path` exactly.
  lookup = path: set:
    if path == [ ] then { found = true; value = set; }
    else if isAttrs set && hasAttr (head path) set then lookup (tail path) set.${head path}
    else { found = false; };

  # Lower-cased top-level names to the names themselves, built only if some lookup needs it.
  lowerNames = listToAttrs (map (n: { name = toLower n; value = n; }) (attrNames pkgs));

  isPackage = v: (isAttrs v && (v.type or null) == "derivation") || isString v || builtins.isPath v;

  # Looks a package up: the exact attribute path first, then with the top-level name matched
  # case-insensitively (only the top level: nested sets often have names differing only in case).
  fetchPackage = n:
    let
      path = splitDots n;
      exact = lookup path pkgs;
      top = head path;
      lowerTop = toLower top;
      amended = if hasAttr lowerTop lowerNames then lookup ([ lowerNames.${lowerTop} ] ++ tail path) pkgs else { found = false; };
      hit = if exact.found then exact else amended;
    in
    if path != [ ] && hit.found && isPackage hit.value then { ok = hit.value; } else { missing = n; };

  requested = map fetchPackage (fromJSON packages);
  missing = map (r: r.missing) (filter (r: r ? missing) requested);
  allContents = (if isList contents then contents else [ contents ]) ++ map (r: r.ok) (filter (r: r ? ok) requested);

  # --- Builders ----------------------------------------------------------------------------------
  # A derivation run by one of the programs, with its inputs as structured attributes. Layers are
  # cheaper to build than to download, and asking a binary cache about each would cost more than
  # building it, hence no substitutes.
  run = program: drvName: attrs: derivation ({
    name = drvName;
    system = buildSystem;
    builder = "${tools}/bin/${program}";
    __structuredAttrs = true;
    allowSubstitutes = false;
    preferLocalBuild = true;
  } // attrs);

  popularityFile =
    if popularity != null then "${popularity}"
    else if popularityUrl == null then null
    else if popularityHash == null then builtins.fetchurl popularityUrl
    else builtins.fetchurl { url = popularityUrl; sha256 = popularityHash; };

  # 1. Group the closure into layers (one layer is kept for the customisation layer).
  grouping = run "group-layers" "${baseName}-grouped-layers.json" ({
    exportReferencesGraph.graph = allContents;
    budget = maxLayers - 1;
    outputs = [ "out" "explain" ];
  } // (if popularityFile != null then { popularity = popularityFile; } else { })
    // (if strategy != null then { inherit strategy; } else { }));

  # The grouping, read back: the only import-from-derivation. Its store paths come back without
  # context, so each layer gets exactly its own paths' context again.
  groups = fromJSON (unsafeDiscardStringContext (readFile grouping.out));
  withContext = p: appendContext p { ${p} = { path = true; }; };

  # 2. One derivation per layer: its name and inputs depend on its paths alone, so the same group
  #    in two images (or two versions of one image) is the same derivation, built once.
  storeLayer = group: run "layer-hash" "layer.tar" {
    mode = "layer";
    paths = map withContext group.contents;
    outputs = [ "out" "record" ];
  };
  storeLayers = map storeLayer groups;

  # 3. The customisation layer: the symlinkJoin of the contents at /, written without building it.
  customisationLayer = run "layer-hash" "customisation-layer.tar" {
    mode = "customisation";
    contents = allContents;
    outputs = [ "out" "record" ];
  };

  # 4. Config and manifest, from the layers' hash records, read at build time (not evaluation).
  manifestOutput = run "layer-hash" "manifest-output.json" {
    mode = "manifest";
    imageSystem = hostSystem;
    inherit imageConfig;
    layers = map (l: l.record) (storeLayers ++ [ customisationLayer ]);
    outputs = [ "out" "config" ];
  };

  imageTag = if tag != null then tag else substring 0 32 (baseNameOf (unsafeDiscardStringContext manifestOutput.out.outPath));

  layout = run "layer-hash" "${baseName}-image-layout" {
    mode = "layout";
    manifest = manifestOutput.out;
  };

  # The structured error the seed returned: every package that was not found, and no image.
  notFound = run "layer-hash" "manifest-output.json" {
    mode = "text";
    text = toJSON { error = "not_found"; pkgs = missing; };
  };
in
if missing != [ ] then notFound // { inherit missing; imageName = baseName; }
else manifestOutput // {
  inherit layout imageTag grouping;
  imageName = baseName;
  layers = storeLayers;
  inherit customisationLayer;
}
