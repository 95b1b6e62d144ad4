# A nixpkgs overlay:
#   pkgs.nix-image-layers       the programs (bin/group-layers, bin/layer-hash)
#   pkgs.buildRegistryImage     build-image.nix with this package set and these programs, e.g.
#                               pkgs.buildRegistryImage { name = "hello"; contents = [ pkgs.hello ]; }
#   pkgs.buildImageIndex        build-index.nix, one tag for images of several platforms
# Use it with `import <nixpkgs> { overlays = [ (import ./overlay.nix) ]; }` or in
# `nixpkgs.overlays` of a NixOS configuration.
final: prev:
let
  self = import ./default.nix { pkgs = final; };
in
{
  nix-image-layers = self.tools;
  buildRegistryImage = self.buildImage;
  buildImageIndex = self.buildImageIndex;
}
