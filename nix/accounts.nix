# Resolves the image's accounts and declared directories (`users`, `groups`, `dirs`, `tmp` of
# build-image.nix) into what layer-hash's customisation mode writes, and checks them at
# evaluation: every problem names the argument and, for a clash, both sides.
#
# - Accounts are written only when `users` or `groups` declares one; root (uid and gid 0, home
#   /root) is then always present. A user whose gid no declared group has gets a group of its own
#   name, as `useradd` does.
# - Each user's home is created, owned by the user (mode 0755; root's /root 0700); `home = "/"`
#   creates nothing.
# - `imageConfig.User` (`NAME`, `NAME:GROUP`, or numbers) must name declared accounts.
#
#   import ./nix/accounts.nix { inherit users groups dirs tmp imageConfig; }
#   # => { problems = [ … ]; users = [ { name; uid; gid; home; shell; description; } ];
#   #      groups = [ { name; gid; members; } ]; dirs = [ { path; mode; uid; gid; } ]; }
{ users, groups, dirs, tmp, imageConfig }:
let
  inherit (builtins)
    all any attrNames concatMap concatStringsSep elem elemAt filter genList head isAttrs isBool
    isInt isList isString length listToAttrs map match removeAttrs stringLength toJSON typeOf;

  show = v: if isString v || isInt v || v == null then toJSON v else "a ${typeOf v}";
  validName = n: isString n && match "[a-z_][a-z0-9_-]*[$]?" n != null && stringLength n <= 32;
  isId = v: isInt v && v >= 0 && v < 4294967295;
  validMode = m: isString m && match "[0-7]{1,4}" m != null;
  validPath = p: isString p && match "(/[^/]+)+" p != null && !(any (c: c == "." || c == "..") (filter isString (builtins.split "/" p)));
  unknownAttrs = known: a: filter (n: !(elem n known)) (attrNames a);

  # --- users -------------------------------------------------------------------------------------
  usersOk = isAttrs users && all (n: isAttrs users.${n}) (attrNames users);
  userProblems = if !usersOk then [ "argument `users`: ${show users}; it must be an attribute set of NAME = { uid; gid ? uid; home ? \"/home/NAME\"; shell ? \"/bin/sh\"; description ? \"\"; }" ]
    else concatMap (n:
      let u = users.${n}; extra = unknownAttrs [ "uid" "gid" "home" "shell" "description" ] u; in
      (if validName n then [ ] else [ "argument `users`: ${toJSON n} is not a user name (lower-case letters, digits, `_` and `-`, at most 32 characters, not starting with a digit or `-`)" ])
      ++ (if u ? uid && isId u.uid then [ ] else [ "argument `users`: user ${n} needs `uid`, a whole number from 0 to 4294967294 (given ${show (u.uid or null)})" ])
      ++ (if !(u ? gid) || isId u.gid then [ ] else [ "argument `users`: user ${n}'s `gid` is ${show u.gid}; a whole number from 0 to 4294967294" ])
      ++ (if all (k: !(u ? ${k}) || isString u.${k}) [ "home" "shell" "description" ] then [ ] else [ "argument `users`: user ${n}'s home, shell and description must be strings" ])
      ++ (if n == "root" && (u.uid or 0) != 0 then [ "argument `users`: root must have uid 0, not ${show u.uid}" ] else [ ])
      ++ (if extra == [ ] then [ ] else [ "argument `users`: user ${n} has unknown attributes ${concatStringsSep ", " extra} (known: uid, gid, home, shell, description)" ]))
      (attrNames users);

  declaredUsers = if userProblems != [ ] then [ ] else map (n: let u = users.${n}; in {
    name = n;
    uid = u.uid;
    gid = u.gid or u.uid;
    home = u.home or (if n == "root" then "/root" else "/home/${n}");
    shell = u.shell or "/bin/sh";
    description = u.description or "";
  }) (attrNames users);
  rootUser = { name = "root"; uid = 0; gid = 0; home = "/root"; shell = "/bin/sh"; description = ""; };
  allUsers = declaredUsers ++ (if users ? root then [ ] else [ rootUser ]);

  # --- groups ------------------------------------------------------------------------------------
  groupsOk = isAttrs groups && all (n: isAttrs groups.${n}) (attrNames groups);
  userNames = map (u: u.name) allUsers;
  groupProblems = if !groupsOk then [ "argument `groups`: ${show groups}; it must be an attribute set of NAME = { gid; members ? [ ]; }" ]
    else concatMap (n:
      let g = groups.${n}; extra = unknownAttrs [ "gid" "members" ] g; members = g.members or [ ]; in
      (if validName n then [ ] else [ "argument `groups`: ${toJSON n} is not a group name (lower-case letters, digits, `_` and `-`, at most 32 characters)" ])
      ++ (if g ? gid && isId g.gid then [ ] else [ "argument `groups`: group ${n} needs `gid`, a whole number from 0 to 4294967294 (given ${show (g.gid or null)})" ])
      ++ (if n == "root" && (g.gid or 0) != 0 then [ "argument `groups`: root must have gid 0, not ${show g.gid}" ] else [ ])
      ++ (if isList members && all isString members then map (m: "argument `groups`: group ${n} lists member ${toJSON m}, who is not in `users`") (filter (m: !(elem m userNames)) members)
          else [ "argument `groups`: group ${n}'s `members` must be a list of user names" ])
      ++ (if extra == [ ] then [ ] else [ "argument `groups`: group ${n} has unknown attributes ${concatStringsSep ", " extra} (known: gid, members)" ]))
      (attrNames groups);

  declaredGroups = if groupProblems != [ ] then [ ] else map (n: { name = n; gid = groups.${n}.gid; members = groups.${n}.members or [ ]; }) (attrNames groups);
  withRootGroup = declaredGroups ++ (if groups ? root then [ ] else [ { name = "root"; gid = 0; members = [ ]; } ]);
  # A user whose gid no group has gets a group of its own name.
  ownGroups = map (u: { name = u.name; gid = u.gid; members = [ ]; })
    (filter (u: !(any (g: g.gid == u.gid) withRootGroup) && !(groups ? ${u.name})) allUsers);
  allGroups = withRootGroup ++ ownGroups;

  # Ids and names that clash, each naming both sides.
  pairs = xs: concatMap (i: map (j: [ (elemAt xs i) (elemAt xs j) ]) (genList (j: j + i + 1) (length xs - i - 1))) (genList (i: i) (length xs));
  clashProblems =
    map (p: "argument `users`: ${(head p).name} and ${(elemAt p 1).name} both have uid ${toString (head p).uid}")
      (filter (p: (head p).uid == (elemAt p 1).uid) (pairs allUsers))
    ++ map (p: "argument `groups`: ${(head p).name} and ${(elemAt p 1).name} both have gid ${toString (head p).gid}${if elem (head p).name userNames || elem (elemAt p 1).name userNames then " (a user whose gid has no group gets a group of its own name)" else ""}")
      (filter (p: (head p).gid == (elemAt p 1).gid) (pairs allGroups))
    ++ map (u: "arguments `users` and `groups`: user ${u.name} has gid ${toString u.gid}, but group ${u.name} has gid ${toString groups.${u.name}.gid}; give the user gid = ${toString groups.${u.name}.gid} or rename one")
      (filter (u: groups ? ${u.name} && isAttrs groups.${u.name} && (groups.${u.name}.gid or null) != u.gid && !(any (g: g.gid == u.gid) declaredGroups)) declaredUsers);

  accounts = users != { } || groups != { };
  uidOf = n: (head (filter (u: u.name == n) allUsers)).uid;
  gidOf = n: (head (filter (g: g.name == n) allGroups)).gid;
  knownUser = n: elem n (if accounts then userNames else [ "root" ]);
  knownGroup = n: elem n (if accounts then map (g: g.name) allGroups else [ "root" ]);
  isNumber = s: match "[0-9]+" s != null;

  # --- imageConfig.User --------------------------------------------------------------------------
  userSpec = imageConfig.User or null;
  userParts = if isString userSpec then builtins.split ":" userSpec else [ ];
  userPart = if userParts == [ ] then null else head userParts;
  groupPart = if length userParts >= 3 then elemAt userParts 2 else null;
  configUserProblems =
    if userSpec == null || userProblems != [ ] || groupProblems != [ ] then [ ]
    else if !isString userSpec || length userParts > 3 || userPart == "" || groupPart == "" then [ "argument `imageConfig`: User ${show userSpec} is not NAME, NAME:GROUP, UID or UID:GID" ]
    else (if isNumber userPart || knownUser userPart then [ ] else [ "argument `imageConfig`: User names ${toJSON userPart}, who is not declared in `users`${if accounts then "" else " (no accounts are declared, so only root and numeric ids work)"}" ])
      ++ (if groupPart == null || isNumber groupPart || knownGroup groupPart then [ ] else [ "argument `imageConfig`: User names group ${toJSON groupPart}, which is not declared in `groups` (nor a user's own group)" ]);

  # --- dirs and tmp --------------------------------------------------------------------------------
  dirsOk = isList dirs && all isAttrs dirs;
  owner = what: kind: v:
    if isInt v then (if isId v then { ok = true; id = v; } else { ok = false; why = "${what}: ${kind} ${show v} is not a valid id"; })
    else if isString v && (if kind == "user" then knownUser v else knownGroup v) then { ok = true; id = if kind == "user" then uidOf v else gidOf v; }
    else { ok = false; why = "${what}: ${kind} ${show v} is not declared (in `${kind}s`) nor a number"; };
  dirProblems = if !dirsOk then [ "argument `dirs`: ${show dirs}; it must be a list of { path; mode ? \"0755\"; user ? \"root\"; group ? \"root\"; }" ]
    else concatMap (d:
      let
        what = "argument `dirs`: entry ${show (d.path or null)}";
        u = owner what "user" (d.user or "root");
        g = owner what "group" (d.group or "root");
        extra = unknownAttrs [ "path" "mode" "user" "group" ] d;
      in
      (if validPath (d.path or null) then [ ] else [ "${what}: `path` must be an absolute path without `.` or `..`, such as \"/var/lib/app\"" ])
      ++ (if validMode (d.mode or "0755") then [ ] else [ "${what}: mode ${show d.mode} is not octal text such as \"0755\"" ])
      ++ (if u.ok then [ ] else [ u.why ]) ++ (if g.ok then [ ] else [ g.why ])
      ++ (if extra == [ ] then [ ] else [ "${what}: unknown attributes ${concatStringsSep ", " extra} (known: path, mode, user, group)" ]))
      dirs;
  tmpProblems = if isBool tmp then [ ] else [ "argument `tmp`: ${show tmp}; true (a /tmp of mode 1777, the default) or false" ];

  declaredDirs = if dirProblems != [ ] || !dirsOk then [ ] else map (d: {
    inherit (d) path;
    mode = d.mode or "0755";
    uid = (owner "" "user" (d.user or "root")).id;
    gid = (owner "" "group" (d.group or "root")).id;
  }) dirs;
  homes = if !accounts then [ ] else map (u: { path = u.home; mode = if u.name == "root" then "0700" else "0755"; inherit (u) uid gid; })
    (filter (u: validPath u.home) allUsers);
  tmpDir = if tmp == true then [ { path = "/tmp"; mode = "1777"; uid = 0; gid = 0; } ] else [ ];
  allDirs = tmpDir ++ homes ++ declaredDirs;
  dirClashes = map (p: "arguments `dirs`, `users` and `tmp`: ${(head p).path} is declared twice, with different owners or modes")
    (filter (p: (head p).path == (elemAt p 1).path && removeAttrs (head p) [ ] != elemAt p 1) (pairs allDirs));

  problems = userProblems ++ groupProblems ++ dirProblems ++ tmpProblems
    ++ (if userProblems == [ ] && groupProblems == [ ] && dirProblems == [ ] then clashProblems ++ configUserProblems ++ dirClashes else [ ]);
in
{
  inherit problems;
  users = if accounts then allUsers else [ ];
  groups = if accounts then allGroups else [ ];
  dirs = allDirs;
}
