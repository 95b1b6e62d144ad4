# A stand-in for nixpkgs, for testing default.nix, overlay.nix and flake.nix where there is no
# nixpkgs: the example package set, overlays applied as nixpkgs applies them, and a
# `rustPlatform.buildRustPackage` that installs prebuilt binaries (`prebuilt`, a directory with
# bin/) instead of compiling, and keeps the arguments it was given (`buildRustPackageArgs`) so
# tests can check what default.nix asks of the real one.
#
# Where real nixpkgs fails a careless caller, so does this, with the same interfaces
# (pkgs/top-level/stage.nix, aliases.nix, pkgs/stdenv/generic/check-meta.nix, rustPlatform):
# names whose value throws, a plain string attribute, a cross package set whose host-platform
# programs cannot run here, and a rustPlatform that refuses a Cargo.toml asking for a newer rustc.
{
  system ? builtins.currentSystem,
  # As nixpkgs' crossSystem: the platform the packages are for, when it is not `system`. Then
  # `stdenv.hostPlatform` is that platform, `stdenv.buildPlatform` is `system`, and
  # `buildPackages` is the native set of `system`. What `rustPlatform` builds then runs only on
  # the host platform: its derivation has the host's system, which this machine cannot build.
  # The example packages themselves are built on `system`, as a cross package set's are.
  crossSystem ? null,
  # The rustc `rustPlatform` provides. Like cargo, it refuses a Cargo.toml whose rust-version is
  # newer; unlike cargo, it also refuses one that declares none, so that the programs keep saying
  # which rustc they need.
  rustcVersion ? "1.91.0",
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
  hostSystem = if crossSystem == null then system else crossSystem;
  native = import ./default.nix { inherit system rustcVersion overlays prebuilt; };

  # What cargo would say of a Cargo.toml: nothing if this rustc can build it, else why not.
  rustVersionProblem = src:
    let
      package = (builtins.fromTOML (builtins.readFile (src + "/Cargo.toml"))).package;
      wanted = package.rust-version or null;
    in
    if wanted == null then "package `${package.name}` declares no rust-version in Cargo.toml"
    else if builtins.compareVersions wanted rustcVersion > 0
    then "package `${package.name}` cannot be built because it requires rustc ${wanted} or newer, while the currently active rustc version is ${rustcVersion}"
    else null;

  base = final: examples // {
    # A plain string, as nixpkgs' `system` is: not a package.
    inherit system;
    stdenv = {
      hostPlatform.system = hostSystem;
      buildPlatform.system = system;
    };
    buildPackages = if crossSystem == null then final else native;
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
      let problem = rustVersionProblem args.src; in
      if problem != null then throw problem else
      derivation {
        name = "${args.pname}-${args.version}";
        # Built for, and so only on, the host platform.
        system = hostSystem;
        builder = "${examples.busyboxStatic}/busybox";
        args = [ "sh" "-euc" "$bb mkdir -p $out/bin && $bb cp ${prebuilt}/bin/group-layers ${prebuilt}/bin/layer-hash $out/bin/" ];
        bb = "${examples.busyboxStatic}/busybox";
      } // { buildRustPackageArgs = args; };
  };
  final = builtins.foldl' (prev: overlay: prev // overlay final prev) (base final) overlays;
in
final
