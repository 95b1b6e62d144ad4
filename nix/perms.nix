# Checks `perms` of build-image.nix and hands each store layer the entries for its own store
# paths, so that only the layer holding a path changes (every other layer stays the same
# derivation, shared with images without perms). The regex itself is compiled by layer-hash,
# which also fails the layer's build when an entry matches nothing.
#
#   p = import ./nix/perms.nix { inherit perms; inImage = [ "/nix/store/…" … ]; };
#   p.problems          # => [ "argument `perms`: …" … ]: every entry's shape, without building
#   p.notInImage        # => the same for paths not in the image (reads the grouping)
#   p.forLayer contents # => the entries whose path is one of `contents`, path without context
{ perms, inImage }:
let
  inherit (builtins)
    all attrNames concatMap concatStringsSep elem filter isAttrs isInt isList isString match
    storeDir toJSON typeOf unsafeDiscardStringContext;

  show = v: if isString v || isInt v || v == null then toJSON v else "a ${typeOf v}";
  pathOf = e: if isAttrs e.path && e.path ? outPath then unsafeDiscardStringContext e.path.outPath
    else if isString e.path then unsafeDiscardStringContext e.path
    else null;
  isStorePath = p: p != null && match "${storeDir}/[^/]+" p != null;
  known = [ "path" "regex" "mode" "uid" "gid" ];

  problemsOf = e:
    let
      p = pathOf e;
      what = "argument `perms`: entry for ${show p}";
      extra = filter (n: !(elem n known)) (attrNames e);
    in
    (if isStorePath p then [ ] else [ "argument `perms`: entry with path ${show (e.path or null)}: `path` must be a store path or a derivation (not a path inside one)" ])
    ++ (if isString (e.regex or ".*") then [ ] else [ "${what}: `regex` must be a string" ])
    ++ (if (e.mode or null) == null || (isString e.mode && match "[0-7]{1,4}" e.mode != null) then [ ] else [ "${what}: mode ${show e.mode} is not octal text such as \"0755\"" ])
    ++ concatMap (k: if (e.${k} or null) == null || (isInt e.${k} && e.${k} >= 0 && e.${k} < 4294967295) then [ ] else [ "${what}: ${k} ${show e.${k}} is not a valid id" ]) [ "uid" "gid" ]
    ++ (if (e.mode or null) != null || (e.uid or null) != null || (e.gid or null) != null then [ ] else [ "${what}: it sets nothing (give mode, uid or gid)" ])
    ++ (if extra == [ ] then [ ] else [ "${what}: unknown attributes ${concatStringsSep ", " extra} (known: ${concatStringsSep ", " known})" ]);

  ok = isList perms && all (e: isAttrs e && e ? path) perms;
in
{
  problems = if !ok then [ "argument `perms`: ${show perms}; it must be a list of { path; regex ? \".*\"; mode ? null; uid ? null; gid ? null; }" ]
    else concatMap problemsOf perms;
  notInImage = if !ok then [ ] else
    map (e: "argument `perms`: entry for ${toJSON (pathOf e)}: that store path is not in the image (the closure of contents, packages and the store paths imageConfig names)")
      (filter (e: isStorePath (pathOf e) && !(elem (pathOf e) inImage)) perms);
  forLayer = contents: if !ok then [ ] else
    map (e: { path = pathOf e; regex = e.regex or ".*"; mode = e.mode or null; uid = e.uid or null; gid = e.gid or null; })
      (filter (e: elem (pathOf e) contents) perms);
}
