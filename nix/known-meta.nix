# What evaluation knows of the image's contents and looked-up packages, from their `meta`, for
# the SBOMs: licenses (`meta.license`) and package URLs (nixpkgs' `meta.identifiers.purls`), as
# { "/nix/store/…" = { licenses = [ { spdxId; name; } ]; purls = [ … ]; }; }. What throws or says
# nothing is left out; nothing is guessed.
#
#   import ./nix/known-meta.nix allContents
contents:
let
  inherit (builtins) concatMap filter isAttrs isList isString listToAttrs map tryEval unsafeDiscardStringContext;

  licenseEntry = l:
    if isAttrs l then { spdxId = l.spdxId or null; name = l.shortName or l.fullName or null; }
    else if isString l then { spdxId = null; name = l; }
    else { spdxId = null; name = null; };
  metaOf = c:
    let
      get = f: let r = tryEval (f c.meta); in if r.success then r.value else null;
      license = get (m: m.license or null);
      purls = get (m: m.identifiers.purls or (if m ? identifiers.purl then [ m.identifiers.purl ] else [ ]));
    in {
      licenses = if license == null then [ ] else filter (e: e.spdxId != null || e.name != null)
        (map licenseEntry (if isList license then license else [ license ]));
      purls = if isList purls then filter isString purls else [ ];
    };
in
listToAttrs (filter (e: e.value.licenses != [ ] || e.value.purls != [ ])
  (concatMap (c: if isAttrs c && c ? outPath && c ? meta then [ { name = unsafeDiscardStringContext c.outPath; value = metaOf c; } ] else [ ]) contents))
