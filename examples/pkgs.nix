# A small package set for examples and tests, made with builtins.derivation alone: no nixpkgs.
#
# It has what image building must cope with: packages that reference each other, nested attribute
# sets (`xorg.xev`), camel-case top-level names (`haskellPackages`), long file names, hard links
# and symlinks, and a runnable program, so an image made from it can really run. Every builder is
# Debian's static busybox (package busybox-static), imported into the store, so builds also work
# in the Nix sandbox.
{
  # The system the packages are built for; also what build-image.nix reads as the host platform.
  system ? builtins.currentSystem,
  # Changing this changes `libgreeting` and so every package that depends on it, for update tests.
  greetingVersion ? "1.0",
  # Changing this changes `xorg.xev` alone, for tests of what images share.
  xevVersion ? "1.2",
  # A non-empty salt changes every package (not their contents), for tests that build from nothing.
  salt ? "",
  # Where the static busybox binary is on this machine.
  busyboxDir ? /usr/bin,
  # The system the packages are for: what build-image.nix reads as the host platform (the image's
  # architecture). With another system than `system`, give `targetBusyboxDir`.
  hostSystem ? system,
  # A directory holding a static busybox for `hostSystem` (e.g. Debian's busybox-static for
  # arm64, unpacked): the packages then carry it (and data cut from it), built here all the
  # same, as a cross package set's are. Default: null (this machine's busybox).
  targetBusyboxDir ? null,
}:
let
  # A store path holding only `busybox`, so that busybox sees its own name in argv[0].
  busyboxStatic = builtins.path {
    path = busyboxDir;
    name = "busybox-static";
    filter = p: _: baseNameOf p == "busybox";
  };

  # mkPackage { name; script; deps ? []; meta ? {} }: runs `script` with busybox's sh; `$out` is
  # the output, `$deps` the store paths of `deps` (written into the output, so they become
  # references). `meta` (e.g. `license`, as nixpkgs' `lib.licenses` entries) is an attribute of
  # the result, not of the build.
  mkPackage = { name, script, deps ? [ ], meta ? { } }:
    derivation ({
      inherit name system deps;
      builder = "${busyboxStatic}/busybox";
      args = [ "sh" "-euc" script ];
      PATH = "${busyboxStatic}";
      bb = "${busyboxStatic}/busybox";
    } // (if salt == "" then { } else { inherit salt; })
      // (if targetBusyboxDir == null then { } else { tbb = "${targetBusybox}/busybox"; })) // { inherit meta; };

  # The busybox the packages carry (`$tbb` in their scripts when set, else the builder's).
  targetBusybox = builtins.path {
    path = targetBusyboxDir;
    name = "busybox-static-${hostSystem}";
    filter = p: _: baseNameOf p == "busybox";
  };

  # Licenses as nixpkgs' lib.licenses writes them.
  licenses = {
    gpl2Only = { spdxId = "GPL-2.0-only"; shortName = "gpl2Only"; fullName = "GNU General Public License v2.0 only"; };
    gpl3Plus = { spdxId = "GPL-3.0-or-later"; shortName = "gpl3Plus"; fullName = "GNU General Public License v3.0 or later"; };
    mit = { spdxId = "MIT"; shortName = "mit"; fullName = "MIT License"; };
  };

  # busybox as a package: bin/busybox plus applet links, so an image gets /bin/sh and friends.
  busybox = mkPackage {
    name = "busybox-1.36";
    meta.license = licenses.gpl2Only;
    script = ''
      $bb mkdir -p $out/bin
      $bb cp ''${tbb:-$bb} $out/bin/busybox
      for a in sh echo cat ls env test true; do $bb ln -s busybox $out/bin/$a; done
    '';
  };

  libgreeting = mkPackage {
    name = "libgreeting-${greetingVersion}";
    script = ''
      $bb mkdir -p $out/lib $out/share
      echo "Hello from libgreeting ${greetingVersion}" > $out/share/greeting
      $bb head -c 200000 ''${tbb:-$bb} > $out/lib/libgreeting.so.1
      $bb ln -s libgreeting.so.1 $out/lib/libgreeting.so
    '';
  };

  # A base library most packages use, like glibc.
  libbase = mkPackage {
    name = "libbase-2.0";
    script = ''
      $bb mkdir -p $out/lib
      $bb head -c 300000 ''${tbb:-$bb} > $out/lib/libbase.so.2
    '';
  };

  # A runnable program: a busybox script that reads libgreeting's data.
  hello = mkPackage {
    name = "hello-2.12";
    meta.license = [ licenses.gpl3Plus licenses.mit ];
    meta.identifiers.purls = [ "pkg:generic/hello@2.12" ];
    deps = [ busybox libgreeting libbase ];
    script = ''
      set -- $deps
      $bb mkdir -p $out/bin $out/share/doc/hello
      printf '#!%s/bin/sh\nread -r line < %s/share/greeting\necho "$line, and hello, world!"\n' "$1" "$2" > $out/bin/hello
      $bb chmod 555 $out/bin/hello
      echo "uses $3" > $out/share/doc/hello/README
    '';
  };

  # Odd file system contents: long names, hard links, symlinks to directories, empty things.
  oddities = mkPackage {
    name = "oddities-0.1";
    deps = [ libbase ];
    script = ''
      long=$($bb printf 'n%.0s' $($bb seq 1 150))
      $bb mkdir -p $out/share/$long/$long $out/share/empty-dir $out/bin
      echo deep > $out/share/$long/$long/file-with-a-path-over-255-bytes
      echo original > $out/share/original
      $bb ln $out/share/original $out/share/hard-link
      $bb ln -s ../share $out/bin/share-link
      $bb ln -s /nonexistent/target $out/bin/dangling
      : > $out/share/empty-file
      echo "$deps" > $out/share/deps
    '';
  };

  xev = mkPackage {
    name = "xev-${xevVersion}";
    meta.license = licenses.mit;
    deps = [ libbase ];
    script = ''$bb mkdir -p $out/bin; printf '#!/bin/sh\necho xev\n' > $out/bin/xev; $bb chmod 555 $out/bin/xev; echo "$deps" > $out/bin/.deps'';
  };

  stylish-haskell = mkPackage {
    name = "stylish-haskell-0.14";
    deps = [ libbase libgreeting ];
    script = ''$bb mkdir -p $out/bin; echo "$deps" > $out/bin/stylish-haskell'';
  };
in
{
  inherit busybox libgreeting libbase hello oddities busyboxStatic;
  xorg = { inherit xev; };
  haskellPackages = { inherit stylish-haskell; };
  # What build-image.nix reads for the image architecture, as in nixpkgs.
  stdenv.hostPlatform.system = hostSystem;
  stdenv.buildPlatform.system = system;
}
