{
  description = "Nix closures to container image layers a registry can serve straight from the store";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f nixpkgs.legacyPackages.${system}; }) systems);
    in
    {
      # nix build .#default: bin/group-layers and bin/layer-hash.
      packages = forAllSystems (pkgs: { default = (import ./default.nix { inherit pkgs; }).tools; });

      # pkgs.nix-image-layers and pkgs.buildRegistryImage.
      overlays.default = import ./overlay.nix;

      # lib.buildImage { pkgs = nixpkgs.legacyPackages.x86_64-linux; name = "hello"; contents = [ ... ]; }
      # takes every argument of build-image.nix; `pkgs` is required, `tools` defaults to this
      # flake's programs built with `pkgs`.
      lib.buildImage = { pkgs, ... }@args: (import ./default.nix { inherit pkgs; }).buildImage args;

      # lib.buildImageIndex { pkgs; name; images = [ … ]; }: build-index.nix (one tag, several
      # platforms); `tools` defaults to this flake's programs built with `pkgs`.
      lib.buildImageIndex = { pkgs, ... }@args: (import ./default.nix { inherit pkgs; }).buildImageIndex args;
    };
}
