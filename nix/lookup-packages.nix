# Looks packages up by attribute path in a package set, as Nixery (2019) did, and says which
# names were not found instead of failing on the first.
#
#   import ./nix/lookup-packages.nix pkgs [ "hello" "xorg.xev" ]
#   => { found = [ <hello> <xev> ]; missing = [ ]; }
#
# A path that does not exist is retried with its top-level name matched case-insensitively
# ("haskellpackages.stylish-haskell" finds haskellPackages.stylish-haskell). Nested names stay
# exact: nested sets often hold names that differ only in case.
#
# A name whose value throws is missing, never an aborted evaluation: real nixpkgs has hundreds
# of removed names that throw (pkgs/top-level/aliases.nix), package sets that throw on the wrong
# platform, and unfree, broken or insecure packages whose drvPath throws from the meta check
# (lib.extendDerivation). A string is a package only if it carries store context (a store path),
# so `"system"` does not put "x86_64-linux" into the image.
pkgs:
names:
let
  inherit (builtins)
    attrNames filter hasAttr hasContext head isAttrs isPath isString listToAttrs map replaceStrings
    seq split tail tryEval;

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = replaceStrings upper lower;
  splitDots = s: filter isString (split "\\." s);

  # { found = true; value } or { found = false; }, following `path` exactly.
  follow = path: set:
    if path == [ ] then { found = true; value = set; }
    else if isAttrs set && hasAttr (head path) set then follow (tail path) set.${head path}
    else { found = false; };

  # Lower-cased top-level names to the names themselves, built only if some lookup needs it.
  lowerNames = listToAttrs (map (n: { name = toLower n; value = n; }) (attrNames pkgs));

  # Forcing drvPath runs nixpkgs' meta check, which throws for unfree, broken or insecure
  # packages; tryEval turns any such throw into "not a package".
  isPackage = v:
    (isAttrs v && (v.type or null) == "derivation" && seq v.drvPath true)
    || (isString v && hasContext v)
    || isPath v;

  # { ok = package; } or { missing = name; }.
  lookup = n:
    let
      path = splitDots n;
      exact = follow path pkgs;
      lowerTop = toLower (head path);
      amended = if hasAttr lowerTop lowerNames then follow ([ lowerNames.${lowerTop} ] ++ tail path) pkgs else { found = false; };
      hit = if exact.found then exact else amended;
      usable = tryEval (path != [ ] && hit.found && isPackage hit.value);
    in
    if usable.success && usable.value then { ok = hit.value; } else { missing = n; };

  results = map lookup names;
in
{
  found = map (r: r.ok) (filter (r: r ? ok) results);
  missing = map (r: r.missing) (filter (r: r ? missing) results);
}
