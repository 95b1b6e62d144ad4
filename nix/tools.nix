# The programs (bin/group-layers, bin/layer-hash and bin/layer-eval), built with a package set's
# Rust tooling from Cargo.lock, so the build needs no network.
#
#   import ./nix/tools.nix { inherit pkgs; }
{
  # The package set whose `rustPlatform` builds the programs.
  pkgs,
}:
let
  root = ./..;
  cargo = builtins.fromTOML (builtins.readFile (root + "/Cargo.toml"));

  # Only what the build reads, so editing tests or docs does not rebuild the programs.
  src = builtins.path {
    path = root;
    name = "nix-image-layers-src";
    filter = path: type:
      let rel = builtins.substring (builtins.stringLength (toString root) + 1) (-1) path;
      in rel == "Cargo.toml" || rel == "Cargo.lock" || rel == "src" || builtins.substring 0 4 rel == "src/";
  };
in
pkgs.rustPlatform.buildRustPackage {
  pname = cargo.package.name;
  version = cargo.package.version;
  inherit src;
  cargoLock.lockFile = root + "/Cargo.lock";
  # The tests need Nix, the shared data and registry clients; they run in this repository's CI.
  doCheck = false;
  meta = {
    description = cargo.package.description;
    mainProgram = "group-layers";
  };
}
