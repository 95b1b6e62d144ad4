# The store paths a value names: every string with context anywhere in it (attribute values,
# list elements; a derivation counts as its out path, a Nix path as its copy in the store), cut
# to the store paths it contains, each carrying that string's context so that Nix builds it. These
# become roots of the image's closure: `imageConfig.Cmd = [ "${pkgs.hello}/bin/hello" ]` puts
# hello in the image even when `packages` does not name it.
#
#   import ./nix/config-roots.nix [ imageConfig users ]   # => [ "/nix/store/…-hello-2.12" … ]
value:
let
  inherit (builtins)
    appendContext attrValues concatMap elemAt filter getContext hasContext isAttrs isList isPath
    isString split storeDir unsafeDiscardStringContext;

  strings = v:
    if isAttrs v && v ? outPath then strings "${v}"
    else if isAttrs v then concatMap strings (attrValues v)
    else if isList v then concatMap strings v
    else if isPath v then [ "${v}" ]
    else if isString v && hasContext v then [ v ]
    else [ ];

  # A store path: the store directory, a 32-character hash, a name (no `/`).
  storePath = "(${storeDir}/[0-9a-df-np-sv-z]{32}-[-.+_?=0-9a-zA-Z]*)";
  pathsIn = s: map (m: appendContext (elemAt m 0) (getContext s)) (filter isList (split storePath (unsafeDiscardStringContext s)));
in
concatMap pathsIn (strings value)
