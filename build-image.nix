# Builds a container image from Nix packages, laid out for a registry to serve straight from the
# store: the result is `manifest-output.json` (a Docker Image Manifest V2 schema 2 or an OCI
# image manifest, plus `layerLocations`, from each blob's digest to the store file holding it),
# with an attribute `layout` that lays the image out in skopeo's `dir:` format for pushing.
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
  # Packages by attribute path in `pkgs`, as a JSON list in a string ('["hello", "xorg.xev"]'),
  # or as a Nix list of strings. See nix/lookup-packages.nix for how names are matched.
  # Default: "[]".
  packages ? "[]",
  # The most layers the image may have, the customisation layer included: 2 to 125 (Docker
  # refuses images of more). The store paths get `maxLayers - 1` layers (`budget` to the
  # grouping). Default: 96.
  maxLayers ? 96,
  # Popularity data (Nixery's format, {"name-without-hash": count}) as a local file. Default: null.
  popularity ? null,
  # Or popularity data fetched by Nix from a URL, as Nixery (2019) did; give `popularityHash`
  # (sha256) to make the fetch pure. Not together with `popularity`. Default: null (no
  # popularity data: every path counts 1).
  popularityUrl ? null,
  # The sha256 of the file at `popularityUrl` (any format builtins.fetchurl accepts). Default: null.
  popularityHash ? null,
  # The layering strategy of group-layers: "stable", "nixery", "popularity-order" or
  # "auto-layer" (docs/layering.md). Default: null, which is "stable".
  strategy ? null,
  # The image config's `config` object (Cmd, Env, WorkingDir, ...). Default: {} (present but
  # empty, which Kubernetes requires).
  imageConfig ? { },
  # How layers are stored: "none" (the tar itself: exactly the bytes of Nixery (2019)), "gzip"
  # (every engine pulls it) or "zstd" (smaller and faster; containerd 1.5+ and podman pull it,
  # Docker 20.10 does not). Default: "gzip".
  compression ? "gzip",
  # The manifest format: "docker" (Docker Image Manifest V2 schema 2) or "oci" (OCI image
  # manifest). Default: null, which is "docker", or "oci" with zstd, which Docker's media types
  # cannot name.
  format ? null,
  # The programs: any derivation or path holding bin/group-layers and bin/layer-hash, such as a
  # directory of binaries built with cargo. Default: the ones default.nix builds from this
  # repository with `pkgs`.
  tools ? import ./nix/tools.nix { inherit pkgs; },
  # The system the builders run on. Default: `pkgs`' build platform.
  buildSystem ? pkgs.stdenv.buildPlatform.system or builtins.currentSystem,
  ...
}:
let
  inherit (builtins)
    concatStringsSep fromJSON isList isString map substring toJSON
    unsafeDiscardStringContext appendContext readFile;

  problems = import ./nix/check-arguments.nix {
    inherit name tag packages maxLayers popularity popularityUrl popularityHash strategy imageConfig contents compression format;
  };

  manifestFormat = if format != null then format else if compression == "zstd" then "oci" else "docker";
  # The blob's file name ends as its content is stored.
  blobSuffix = { none = ""; gzip = ".gz"; zstd = ".zst"; }.${compression} or "";

  hostSystem = pkgs.stdenv.hostPlatform.system or pkgs.system or buildSystem;
  baseName = baseNameOf name;

  # The store layers' budget: one layer of maxLayers is kept for the customisation layer.
  budget = maxLayers - 1;

  lookup = import ./nix/lookup-packages.nix pkgs (if isString packages then fromJSON packages else packages);
  inherit (lookup) missing;
  allContents = (if isList contents then contents else [ contents ]) ++ lookup.found;

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

  # 1. Group the closure into layers.
  grouping = run "group-layers" "${baseName}-grouped-layers.json" ({
    exportReferencesGraph.graph = allContents;
    inherit budget;
    outputs = [ "out" "explain" ];
  } // (if popularityFile != null then { popularity = popularityFile; } else { })
    // (if strategy != null then { inherit strategy; } else { }));

  # The grouping, read back: the only import-from-derivation. Its store paths come back without
  # context, so each layer gets exactly its own paths' context again.
  groups = fromJSON (unsafeDiscardStringContext (readFile grouping.out));
  withContext = p: appendContext p { ${p} = { path = true; }; };

  # 2. One derivation per layer: its name and inputs depend on its paths alone, so the same group
  #    in two images (or two versions of one image) is the same derivation, built once.
  storeLayer = group: run "layer-hash" "layer.tar${blobSuffix}" {
    mode = "layer";
    paths = map withContext group.contents;
    inherit compression;
    outputs = [ "out" "record" ];
  };
  storeLayers = map storeLayer groups;

  # 3. The customisation layer: the symlinkJoin of the contents at /, written without building it.
  customisationLayer = run "layer-hash" "customisation-layer.tar${blobSuffix}" {
    mode = "customisation";
    contents = allContents;
    inherit compression;
    outputs = [ "out" "record" ];
  };

  # 4. Config and manifest, from the layers' hash records, read at build time (not evaluation).
  manifestOutput = run "layer-hash" "manifest-output.json" {
    mode = "manifest";
    imageSystem = hostSystem;
    format = manifestFormat;
    inherit imageConfig;
    layers = map (l: l.record) (storeLayers ++ [ customisationLayer ]);
    outputs = [ "out" "config" ];
  };

  imageTag = if tag != null then tag else substring 0 32 (baseNameOf (unsafeDiscardStringContext manifestOutput.out.outPath));

  layout = run "layer-hash" "${baseName}-image-layout" {
    mode = "layout";
    manifest = manifestOutput.out;
  };

  # The image as an OCI image layout, tagged imageTag, blobs linked into the store. OCI tools
  # (skopeo's oci: transport, umoci) read only OCI manifests from one, hence format "oci".
  ociLayout =
    if manifestFormat != "oci" then
      throw "build-image.nix: `ociLayout` needs format = \"oci\" (OCI tools read only OCI manifests from an OCI layout); this image has format \"${manifestFormat}\". Use `layout` (skopeo's dir:) or `stream` for it."
    else run "layer-hash" "${baseName}-oci-layout" {
      mode = "oci-layout";
      manifest = manifestOutput.out;
      tag = imageTag;
    };

  # An executable that writes the image as a `docker load` / `podman load` archive to stdout,
  # reading the blobs from the store: `$(nix-build ... -A stream) | docker load`.
  stream = run "layer-hash" "${baseName}-stream" {
    mode = "load-script";
    manifest = manifestOutput.out;
    imageName = name;
    tag = imageTag;
  };

  # The structured error Nixery (2019) returned: every package that was not found, and no image.
  notFound = run "layer-hash" "manifest-output.json" {
    mode = "text";
    text = toJSON { error = "not_found"; pkgs = missing; };
  };
in
if problems != [ ] then throw "build-image.nix: ${concatStringsSep "\n  " ([ "" ] ++ problems)}"
else if missing != [ ] then notFound // { inherit missing; imageName = baseName; }
else manifestOutput // {
  inherit layout ociLayout stream imageTag grouping compression;
  format = manifestFormat;
  imageName = baseName;
  layers = storeLayers;
  inherit customisationLayer;
}
