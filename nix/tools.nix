# The programs (bin/group-layers, bin/layer-hash and bin/layer-eval), built with a package set's
# Rust tooling from Cargo.lock, so the build needs no network.
#
#   import ./nix/tools.nix { inherit pkgs; }
#
# The programs run as builders, on the build platform, so they are built with the package set of
# the build platform (`pkgs.buildPackages`): with a cross package set such as
# pkgsCross.aarch64-multiplatform on x86_64, `pkgs.rustPlatform` would make aarch64 programs that
# cannot run where the image is built.
{
  # The package set of the image; its `buildPackages.rustPlatform` builds the programs (Cargo.toml
  # says which rustc they need: rust-version).
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
(pkgs.buildPackages or pkgs).rustPlatform.buildRustPackage {
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
