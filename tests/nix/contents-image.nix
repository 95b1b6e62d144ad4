# The image of every content argument: what the engines must show of it (tests/common/contents.rs),
# and the derivations whose attributes seed the fuzzer (tools/attrs-corpus.py). Any argument of
# build-image.nix given here is added or replaces the one below.
{ tools, pkgs ? import ../../examples/pkgs.nix { }, ... }@args:
import ../../build-image.nix ({
  inherit pkgs tools;
  name = "contents";
  tag = "v1";
  packages = ''["busybox"]'';
  # hello comes in only as the command: a root of the image, not linked at /.
  imageConfig = { Cmd = [ "${pkgs.hello}/bin/hello" ]; User = "app"; };
  users.app = { uid = 1000; };
  groups.staff = { gid = 2000; members = [ "app" ]; };
  dirs = [ { path = "/var/lib/app"; user = "app"; group = "staff"; mode = "0770"; } ];
  labels = { "org.example.team" = "images"; };
  perms = [ { path = pkgs.hello; regex = "bin/hello"; mode = "0750"; gid = 1000; } ];
  created = "2024-05-01T12:00:00Z";
} // builtins.removeAttrs args [ "pkgs" "tools" ])
