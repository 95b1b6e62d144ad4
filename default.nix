# The programs, built with nixpkgs' Rust tooling from Cargo.lock (no network inside the build),
# and `buildImage`: build-image.nix with `pkgs` and `tools` filled in.
#
#   nix-build -A tools                                   # bin/group-layers, bin/layer-hash
#   (import ./default.nix { }).buildImage { name = "hello"; packages = ''["hello"]''; }
#   (import ./default.nix { }).buildImageIndex { name = "hello"; images = [ amd64 arm64 ]; }
{
  # The package set whose buildPackages.rustPlatform builds the programs, and the default package
  # set images look their `packages` up in. Default: <nixpkgs>.
  pkgs ? import <nixpkgs> { },
}:
let
  tools = import ./nix/tools.nix { inherit pkgs; };
in
{
  inherit tools;

  # buildImage { name; packages ? "[]"; contents ? []; tag ? null; maxLayers ? 96; ... }:
  # every argument of build-image.nix (docs/reference.md); `pkgs` and `tools` default to this
  # file's.
  buildImage = args: import ./build-image.nix ({ inherit pkgs tools; } // args);

  # buildImageIndex { name; images; tag ? null; }: build-index.nix, one tag for images of several
  # platforms; `pkgs` and `tools` default to this file's.
  buildImageIndex = args: import ./build-index.nix ({ inherit pkgs tools; } // args);
}
