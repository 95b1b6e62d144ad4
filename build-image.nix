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
  # The image config's `config` object (Cmd, Env, WorkingDir, User, ...). Store paths anywhere in
  # it (`Cmd = [ "${pkgs.hello}/bin/hello" ]`) are roots of the image: their closures get layers
  # like `packages`, but no links at /. `User` may name a declared user. Default: {} (present but
  # empty, which Kubernetes requires).
  imageConfig ? { },
  # The config's `created` and every history entry's: an RFC 3339 time, or "now" (the time of
  # evaluation: the image then differs on every build). File mtimes stay 1970-01-01T00:00:01Z.
  # Default: "1970-01-01T00:00:01Z".
  created ? "1970-01-01T00:00:01Z",
  # The config's `Labels`, as an attribute set of strings. Default: {}.
  labels ? { },
  # OCI manifest annotations, as an attribute set of strings; needs format = "oci" (Docker's
  # format has none). `org.opencontainers.image.created` is added from `created`. Default: {}.
  annotations ? { },
  # Accounts: NAME = { uid; gid ? uid; home ? "/home/NAME"; shell ? "/bin/sh"; description ? ""; }.
  # With any user or group declared, /etc/passwd, /etc/group and /etc/shadow (locked passwords)
  # are written with root present, and each home is created, owned by its user. Default: {}.
  users ? { },
  # Groups: NAME = { gid; members ? [ ]; }. A user whose gid no group has gets a group of its
  # own name. Default: {}.
  groups ? { },
  # Whether the image has /tmp, mode 1777. Default: true.
  tmp ? true,
  # More directories: [ { path; mode ? "0755"; user ? "root"; group ? "root"; } ], owner by name
  # (declared in `users`/`groups`) or number. Default: [].
  dirs ? [ ],
  # Owner and mode for store contents: [ { path; regex ? ".*"; mode ? null; uid ? null; gid ? null; } ].
  # `path` is a store path or derivation in the image; `regex` must match the whole path of an
  # entry relative to it (`bin/hello`; the store path itself is ""). Only the layer holding
  # `path` changes. Default: [].
  perms ? [ ],
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
    concatMap concatStringsSep fromJSON isList isString length map substring toJSON
    unsafeDiscardStringContext appendContext readFile;

  accounts = import ./nix/accounts.nix { inherit users groups dirs tmp imageConfig; };
  problems = import ./nix/check-arguments.nix {
    inherit name tag packages maxLayers popularity popularityUrl popularityHash strategy imageConfig contents compression format
      manifestFormat created labels annotations;
  } ++ accounts.problems ++ permsCheck.problems;
  fail = ps: throw "build-image.nix: ${concatStringsSep "\n  " ([ "" ] ++ ps)}";

  manifestFormat = if format != null then format else if compression == "zstd" then "oci" else "docker";
  # The blob's file name ends as its content is stored.
  blobSuffix = { none = ""; gzip = ".gz"; zstd = ".zst"; }.${compression} or "";

  hostSystem = pkgs.stdenv.hostPlatform.system or pkgs.system or buildSystem;
  baseName = baseNameOf name;

  # `created` as the programs take it: RFC 3339 text, or for "now" the seconds at evaluation.
  createdValue = if created == "now" then builtins.currentTime else created;

  # The store layers' budget: one layer of maxLayers is kept for the customisation layer.
  budget = maxLayers - 1;

  lookup = import ./nix/lookup-packages.nix pkgs (if isString packages then fromJSON packages else packages);
  inherit (lookup) missing;
  allContents = (if isList contents then contents else [ contents ]) ++ lookup.found;
  # Store paths the config and the accounts name: in the image, but not linked at /.
  configRoots = import ./nix/config-roots.nix [ imageConfig users labels annotations ];
  # The roots of the image's closure, as the grouping and the SBOMs read it.
  roots = allContents ++ configRoots;

  # --- Builders ----------------------------------------------------------------------------------
  run = import ./nix/builder.nix { inherit tools buildSystem; };

  popularityFile =
    if popularity != null then "${popularity}"
    else if popularityUrl == null then null
    else if popularityHash == null then builtins.fetchurl popularityUrl
    else builtins.fetchurl { url = popularityUrl; sha256 = popularityHash; };

  # 1. Group the closure into layers.
  grouping = run "group-layers" "${baseName}-grouped-layers.json" ({
    exportReferencesGraph.graph = roots;
    inherit budget;
    outputs = [ "out" "explain" ];
  } // (if popularityFile != null then { popularity = popularityFile; } else { })
    // (if strategy != null then { inherit strategy; } else { }));

  # The grouping, read back: the only import-from-derivation. Its store paths come back without
  # context, so each layer gets exactly its own paths' context again.
  grouped = fromJSON (unsafeDiscardStringContext (readFile grouping.out));
  withContext = p: appendContext p { ${p} = { path = true; }; };
  permsCheck = import ./nix/perms.nix { inherit perms; inImage = concatMap (g: g.contents) grouped; };

  # 2. One derivation per layer: its name and inputs depend on its paths alone, so the same group
  #    in two images (or two versions of one image) is the same derivation, built once.
  #    `perms` entries go only to the layer holding their path.
  storeLayer = group: let layerPerms = permsCheck.forLayer group.contents; in run "layer-hash" "layer.tar${blobSuffix}" ({
    mode = "layer";
    paths = map withContext group.contents;
    inherit compression;
    outputs = [ "out" "record" ];
  } // (if layerPerms == [ ] then { } else { perms = layerPerms; }));
  storeLayers = map storeLayer grouped;

  # 3. The customisation layer: the symlinkJoin of the contents at /, written without building it.
  #    With the accounts and the declared directories (/tmp, homes, `dirs`).
  customisationLayer = run "layer-hash" "customisation-layer.tar${blobSuffix}" {
    mode = "customisation";
    contents = allContents;
    inherit compression;
    inherit (accounts) users groups dirs;
    outputs = [ "out" "record" ];
  };

  # What `docker history` says of each layer: its top store path and how many paths it holds.
  storeHistory = map (g: let n = length g.contents; in
    if n == 1 then unsafeDiscardStringContext g.top
    else "${unsafeDiscardStringContext g.top} and ${toString (n - 1)} more store paths") grouped;
  customisationHistory = concatStringsSep ", " ([ "customisation layer: ${toString (length allContents)} contents linked at /" ]
    ++ (if accounts.users != [ ] then [ "${toString (length accounts.users)} users in /etc/passwd" ] else [ ])
    ++ (if accounts.dirs != [ ] then [ "${toString (length accounts.dirs)} directories" ] else [ ]));

  # 4. Config and manifest, from the layers' hash records, read at build time (not evaluation).
  manifestOutput = run "layer-hash" "manifest-output.json" {
    mode = "manifest";
    imageSystem = hostSystem;
    format = manifestFormat;
    imageConfig = imageConfig // (if labels == { } then { } else { Labels = labels; });
    created = createdValue;
    history = storeHistory ++ [ customisationHistory ];
    inherit annotations;
    layers = map (l: l.record) (storeLayers ++ [ customisationLayer ]);
    outputs = [ "out" "config" ];
  };

  # What evaluation knows of the contents and looked-up packages (licenses, package URLs).
  knownMeta = import ./nix/known-meta.nix allContents;

  # The SBOMs (SPDX 2.3, CycloneDX 1.6): from the closure graph Nix exports, as the grouping's.
  sbom = run "layer-hash" "${baseName}-sbom" {
    mode = "sbom";
    exportReferencesGraph.graph = roots;
    imageName = name;
    created = createdValue;
    meta = knownMeta;
  };

  imageTag = if tag != null then tag else substring 0 32 (baseNameOf (unsafeDiscardStringContext manifestOutput.out.outPath));

  layout = run "layer-hash" "${baseName}-image-layout" {
    mode = "layout";
    manifest = manifestOutput.out;
  };

  # The image as an OCI image layout, tagged imageTag, blobs linked into the store, with the SBOMs
  # attached (artifact manifests whose subject is the image, and the referrers tag schema's index
  # under the tag sha256-<hex>). OCI tools (skopeo's oci: transport, umoci) read only OCI
  # manifests from one, hence format "oci".
  ociLayout =
    if manifestFormat != "oci" then
      throw "build-image.nix: `ociLayout` needs format = \"oci\" (OCI tools read only OCI manifests from an OCI layout); this image has format \"${manifestFormat}\". Use `layout` (skopeo's dir:) or `stream` for it."
    else run "layer-hash" "${baseName}-oci-layout" {
      mode = "oci-layout";
      manifest = manifestOutput.out;
      tag = imageTag;
      inherit sbom;
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
if problems != [ ] then fail problems
else if missing != [ ] then notFound // { inherit missing; imageName = baseName; }
else if permsCheck.notInImage != [ ] then fail permsCheck.notInImage
else manifestOutput // {
  inherit layout ociLayout stream sbom imageTag grouping compression;
  format = manifestFormat;
  imageName = baseName;
  # The Nix system the image is for (its config's platform), as build-index.nix reads it.
  imageSystem = hostSystem;
  layers = storeLayers;
  inherit customisationLayer;
}
