# One tag for an image built for several platforms: the OCI image index (or, for images of
# Docker's format, the Docker manifest list) of results of build-image.nix, each image's
# platform (os, architecture, variant) taken from its own config. The result is the index file,
# with attributes `layout` (skopeo's dir:, for `skopeo copy --all dir:RESULT docker://…`) and
# `ociLayout` (format "oci").
#
#   import ./build-index.nix { name = "hello"; images = [ imageAmd64 imageArm64 ]; }
{
  # The package set that builds the programs by default. Default: <nixpkgs>.
  pkgs ? import <nixpkgs> { },
  # The index's name (the repository part of `NAME:TAG`), as build-image.nix's `name`. Required.
  name,
  # The tag. Default (null): the 32-character hash of the index's store path.
  tag ? null,
  # Results of build-image.nix for different platforms, all of one `format`. Required.
  images,
  # The programs (bin/layer-hash), as build-image.nix's `tools`. Default: built with `pkgs`.
  tools ? import ./nix/tools.nix { inherit pkgs; },
  # The system the builders run on. Default: that of the first image's builders.
  buildSystem ? (builtins.head images).system or builtins.currentSystem,
}:
let
  inherit (builtins) all concatStringsSep filter genList elemAt head isAttrs isList length map match substring toJSON typeOf unsafeDiscardStringContext;

  show = v: if builtins.isString v || v == null then toJSON v else "a ${typeOf v}";
  isImage = i: isAttrs i && i ? format && i ? imageSystem && i ? out;
  ok = isList images && images != [ ] && all isImage images;
  component = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
  formats = if ok then map (i: i.format) images else [ ];
  systems = if ok then map (i: i.imageSystem) images else [ ];
  pairs = xs: builtins.concatMap (i: map (j: [ i j ]) (genList (j: j + i + 1) (length xs - i - 1))) (genList (i: i) (length xs));
  problems =
    (if builtins.isString name && match "${component}(/${component})*" name != null then [ ] else [ "argument `name`: ${show name}; an image name is lower-case letters and digits, separated by `.`, `_`, `__` or `-` and joined by `/`" ])
    ++ (if tag == null || (builtins.isString tag && match "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}" tag != null) then [ ] else [ "argument `tag`: ${show tag}; a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`" ])
    ++ (if ok then [ ] else [ "argument `images`: ${show images}; a non-empty list of results of build-image.nix" ])
    ++ (if !ok || all (f: f == head formats) formats then [ ] else [ "argument `images`: images of different formats (${concatStringsSep ", " formats}); build them all with the same `format`" ])
    ++ map (p: "argument `images`: images ${toString (head p + 1)} and ${toString (elemAt p 1 + 1)} are both for ${elemAt systems (head p)}; an index has one image per platform")
      (filter (p: elemAt systems (head p) == elemAt systems (elemAt p 1)) (pairs systems));

  format = head formats;
  baseName = baseNameOf name;
  # The images' manifests, in the order of their systems, so that the order images are given in
  # changes nothing.
  manifests = map (i: i.out) (builtins.sort (a: b: a.imageSystem < b.imageSystem) images);
  run = mode: drvName: attrs: import ./nix/builder.nix { inherit tools buildSystem; } "layer-hash" drvName ({ inherit mode manifests; } // attrs);

  # The index, and its skopeo dir: layout.
  index = run "index" "${baseName}-index.json" { outputs = [ "out" "layout" ]; };
  indexTag = if tag != null then tag else substring 0 32 (baseNameOf (unsafeDiscardStringContext index.out.outPath));
  ociLayout =
    if format != "oci" then throw "build-index.nix: `ociLayout` needs images of format \"oci\" (OCI tools read only OCI manifests from an OCI layout); these are \"${format}\". Use `layout`."
    else run "index-oci-layout" "${baseName}-index-oci-layout" { tag = indexTag; };
in
if problems != [ ] then throw "build-index.nix: ${concatStringsSep "\n  " ([ "" ] ++ problems)}"
else index // {
  inherit format ociLayout;
  layout = index.layout;
  imageName = baseName;
  imageTag = indexTag;
  platforms = systems;
}
