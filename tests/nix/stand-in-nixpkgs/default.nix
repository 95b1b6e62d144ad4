# A stand-in for nixpkgs, for testing default.nix, overlay.nix and flake.nix where there is no
# nixpkgs: the example package set, overlays applied as nixpkgs applies them, and a
# `rustPlatform.buildRustPackage` that installs prebuilt binaries (`prebuilt`, a directory with
# bin/) instead of compiling, and keeps the arguments it was given (`buildRustPackageArgs`) so
# tests can check what default.nix asks of the real one.
{
  system ? builtins.currentSystem,
  overlays ? [ ],
  prebuilt ? ./prebuilt,
  ...
}:
let
  # In a flake (pure evaluation) the package set and busybox are copied beside this file.
  examples =
    if builtins.pathExists ./pkgs.nix
    then import ./pkgs.nix { inherit system; busyboxDir = ./busybox; }
    else import ../../../examples/pkgs.nix { inherit system; };
  base = final: examples // {
    inherit system;
    rustPlatform.buildRustPackage = args:
      derivation {
        name = "${args.pname}-${args.version}";
        inherit system;
        builder = "${examples.busyboxStatic}/busybox";
        args = [ "sh" "-euc" "$bb mkdir -p $out/bin && $bb cp ${prebuilt}/bin/group-layers ${prebuilt}/bin/layer-hash $out/bin/" ];
        bb = "${examples.busyboxStatic}/busybox";
      } // { buildRustPackageArgs = args; };
  };
  final = builtins.foldl' (prev: overlay: prev // overlay final prev) (base final) overlays;
in
final
