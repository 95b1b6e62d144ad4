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
    # A plain string, as nixpkgs' `system` is: not a package.
    inherit system;
    # Names whose value throws, as in real nixpkgs: a removed package (pkgs/top-level/aliases.nix
    # does exactly this), a package set for another platform, and an unfree package, whose
    # derivation is there but whose drvPath and outPath throw from the meta check
    # (pkgs/stdenv/generic/check-meta.nix through lib.extendDerivation).
    atom = throw "'atom' has been removed from nixpkgs, as it was archived upstream.";
    pkgsi686Linux = throw "i686 Linux package set can only be used with the x86 family.";
    unfreeTool =
      let refuse = throw "Package ‘unfree-tool-1.0’ has an unfree license (‘unfree’), refusing to evaluate.";
      in { type = "derivation"; name = "unfree-tool-1.0"; meta.license.free = false; drvPath = refuse; outPath = refuse; };
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
