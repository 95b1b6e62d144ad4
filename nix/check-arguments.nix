# Checks the arguments of build-image.nix at evaluation time, before anything is built: returns
# the list of problems, each naming the argument, what it was given and what is allowed. Empty
# when everything is fine.
#
#   import ./nix/check-arguments.nix { inherit name tag packages maxLayers ...; }
{
  name,
  tag,
  packages,
  maxLayers,
  popularity,
  popularityUrl,
  popularityHash,
  strategy,
  imageConfig,
  contents,
  compression,
  format,
  # `format` with its default resolved (build-image.nix's).
  manifestFormat,
  created,
  labels,
  annotations,
}:
let
  inherit (builtins)
    all concatStringsSep elemAt filter genList isAttrs isInt isList isPath isString length
    match split stringLength toJSON typeOf;

  show = v: if isString v || isInt v || v == null then toJSON v else "a ${typeOf v}";
  problem = arg: given: allowed: "argument `${arg}`: ${given}; ${allowed}";

  # The distribution spec's repository name: lower-case components of letters and digits,
  # separated inside by `.`, `_`, `__` or dashes, joined by `/`.
  component = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
  validName = isString name && match "${component}(/${component})*" name != null && stringLength name <= 255;
  # The distribution spec's tag.
  validTag = tag == null || (isString tag && match "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}" tag != null);

  # Docker's layer store refuses images of more than 125 layers (127 in its storage drivers,
  # less the two it adds for a container); one layer at least holds the store paths and one the
  # customisation layer.
  maxLayersLimit = 125;

  # `packages`: a JSON list of strings, checked without builtins.fromJSON, whose parse errors
  # cannot be caught and would not name the argument. The string is split at JSON strings; what
  # lies around them must be `[`, commas and `]`.
  jsonString = "\"([^\"\\\\[:cntrl:]]|\\\\([\"\\\\/bfnrt]|u[0-9a-fA-F]{4}))*\"";
  pieces = split jsonString packages;
  glue = filter isString pieces;
  count = length glue;
  gap = re: s: match "[[:space:]]*${re}[[:space:]]*" s != null;
  jsonListOfStrings =
    if count == 1 then gap "[[][[:space:]]*[]]" (elemAt glue 0)
    else gap "[[]" (elemAt glue 0) && gap "[]]" (elemAt glue (count - 1))
      && all (gap ",") (genList (i: elemAt glue (i + 1)) (count - 2));
  validPackages =
    if isList packages then all isString packages
    else isString packages && jsonListOfStrings;

  knownStrategies = [ "stable" "nixery" "popularity-order" "auto-layer" ];

  isContent = c: isString c || isPath c || (isAttrs c && c ? outPath);
  validContents = if isList contents then all isContent contents else isContent contents;

  # RFC 3339 date-time; layer-hash checks the days of each month.
  rfc3339 = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
  stringsOnly = a: isAttrs a && all (n: isString a.${n}) (builtins.attrNames a);

  checks = [
    {
      ok = created == "now" || (isString created && match rfc3339 created != null);
      says = problem "created" (show created) "an RFC 3339 time such as \"2024-05-01T12:00:00Z\" (upper-case T and Z, or an offset such as +02:00), or \"now\"";
    }
    {
      ok = stringsOnly labels;
      says = problem "labels" (show labels) "it must be an attribute set of strings";
    }
    {
      ok = !(isAttrs imageConfig && imageConfig ? Labels && labels != { });
      says = problem "labels" "given together with `imageConfig.Labels`" "give the labels in one of the two";
    }
    {
      ok = stringsOnly annotations;
      says = problem "annotations" (show annotations) "it must be an attribute set of strings";
    }
    {
      ok = annotations == { } || manifestFormat == "oci";
      says = problem "annotations" "given with format \"${toString manifestFormat}\"" "annotations exist only in OCI manifests: use format = \"oci\"";
    }
    {
      ok = validName;
      says = problem "name" (show name)
        "an image name is lower-case letters and digits, separated by `.`, `_`, `__` or `-` and joined by `/` (at most 255 characters), e.g. \"hello\" or \"team/hello\"";
    }
    {
      ok = validTag;
      says = problem "tag" (show tag)
        "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`; or null for the image's own hash";
    }
    {
      ok = isInt maxLayers && maxLayers >= 2 && maxLayers <= maxLayersLimit;
      says = problem "maxLayers" (show maxLayers)
        "it must be a whole number from 2 to ${toString maxLayersLimit} (Docker refuses images of more layers; one layer is the customisation layer)";
    }
    {
      ok = validPackages;
      says = problem "packages" (show packages)
        "it must be a JSON list of attribute paths in a string, e.g. '[\"hello\", \"xorg.xev\"]', or a Nix list of strings";
    }
    {
      ok = popularity == null || popularityUrl == null;
      says = problem "popularity" "given together with `popularityUrl`" "give one of the two";
    }
    {
      ok = popularityHash == null || popularityUrl != null;
      says = problem "popularityHash" "given without `popularityUrl`" "it is the hash of the file at popularityUrl";
    }
    {
      ok = strategy == null || (isString strategy && builtins.elem strategy knownStrategies);
      says = problem "strategy" (show strategy) "known strategies: ${concatStringsSep ", " knownStrategies}, or null for stable";
    }
    {
      ok = isAttrs imageConfig;
      says = problem "imageConfig" (show imageConfig) "it must be an attribute set (the config's `config` object: Cmd, Env, ...)";
    }
    {
      ok = builtins.elem compression [ "none" "gzip" "zstd" ];
      says = problem "compression" (show compression) "known compressions: none, gzip, zstd";
    }
    {
      ok = format == null || builtins.elem format [ "docker" "oci" ];
      says = problem "format" (show format) "known formats: docker, oci, or null for docker (oci with zstd)";
    }
    {
      ok = !(format == "docker" && compression == "zstd");
      says = problem "format" "\"docker\" with compression \"zstd\""
        "Docker's manifest format has no media type for zstd layers: use format = \"oci\" (or leave format null), or compression = \"gzip\"";
    }
    {
      ok = validContents;
      says = problem "contents" "not a list of store paths or derivations" "give derivations, paths or store path strings";
    }
  ];
in
map (c: c.says) (filter (c: !c.ok) checks)
