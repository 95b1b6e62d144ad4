# The programs, built with nixpkgs' Rust tooling from Cargo.lock (no network inside the build),
# and `buildImage`: build-image.nix with `pkgs` and `tools` filled in.
#
#   nix-build -A tools                                   # bin/group-layers, bin/layer-hash
#   (import ./default.nix { }).buildImage { name = "hello"; packages = ''["hello"]''; }
{
  # The package set to build the programs with (its rustPlatform), and the default package set
  # images look their `packages` up in. Default: <nixpkgs>.
  pkgs ? import <nixpkgs> { },
}:
let
  cargo = builtins.fromTOML (builtins.readFile ./Cargo.toml);

  # Only what the build reads, so editing tests or docs does not rebuild the programs.
  src = builtins.path {
    path = ./.;
    name = "nix-image-layers-src";
    filter = path: type:
      let rel = builtins.substring (builtins.stringLength (toString ./.) + 1) (-1) path;
      in rel == "Cargo.toml" || rel == "Cargo.lock" || rel == "src" || builtins.substring 0 4 rel == "src/";
  };

  tools = pkgs.rustPlatform.buildRustPackage {
    pname = cargo.package.name;
    version = cargo.package.version;
    inherit src;
    cargoLock.lockFile = ./Cargo.lock;
    # The tests need Nix, the shared data and registry clients; they run in this repository's CI.
    doCheck = false;
    meta = {
      description = cargo.package.description;
      mainProgram = "group-layers";
    };
  };
in
{
  inherit tools;

  # buildImage { name; packages ? "[]"; contents ? []; tag ? null; maxLayers ? 96; ... }:
  # every argument of build-image.nix; `pkgs` and `tools` default to this file's.
  buildImage = args: import ./build-image.nix ({ inherit pkgs tools; } // args);
}
