{
  description = "A stand-in for nixpkgs in tests (see default.nix)";
  outputs = { self }: {
    legacyPackages = builtins.listToAttrs (map (system: { name = system; value = import ./default.nix { inherit system; }; }) [ "x86_64-linux" "aarch64-linux" ]);
  };
}
