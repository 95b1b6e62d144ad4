# A derivation run by one of the programs directly as its builder (no stdenv, no shell), with its
# inputs as structured attributes. Layers and indexes are cheaper to build than to download, and
# asking a binary cache about each would cost more than building it, hence no substitutes.
#
#   run = import ./nix/builder.nix { inherit tools buildSystem; };
#   run "layer-hash" "layer.tar.gz" { mode = "layer"; paths = [ … ]; }
{ tools, buildSystem }:
program: drvName: attrs:
derivation ({
  name = drvName;
  system = buildSystem;
  builder = "${tools}/bin/${program}";
  __structuredAttrs = true;
  allowSubstitutes = false;
  preferLocalBuild = true;
} // attrs)
