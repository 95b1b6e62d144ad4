//! The image's accounts: `/etc/passwd`, `/etc/group` and `/etc/shadow` from the `users` and
//! `groups` of build-image.nix.
//!
//! build-image.nix checks the declarations at evaluation (names, clashing ids, members, root) and
//! passes them resolved: every user with its numeric gid, home and shell, root included, and a
//! group for every gid a user names. This file writes the three files, sorted by id and then name
//! so the bytes do not depend on the order of declaration, and refuses fields that would break
//! the files' colon-separated lines. Passwords are locked (`!`): images are entered with
//! `docker exec`, not a login.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tarball::Meta;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    #[serde(default)]
    pub members: Vec<String>,
}

/// A file the customisation layer declares, at an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFile {
    pub path: String,
    pub data: Vec<u8>,
    pub meta: Meta,
}

/// The three files, or none when no account is declared.
pub fn files(users: &[User], groups: &[Group]) -> Result<Vec<DeclaredFile>> {
    if users.is_empty() && groups.is_empty() {
        return Ok(Vec::new());
    }
    let field = |what: &str, owner: &str, v: &str| -> Result<()> {
        if v.contains([':', '\n']) {
            return Err(Error::Usage(format!("users/groups: {what} of `{owner}` ({v:?}) contains `:` or a newline, which /etc/passwd and /etc/group cannot hold")));
        }
        Ok(())
    };
    let mut users: Vec<&User> = users.iter().collect();
    users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
    let mut groups: Vec<&Group> = groups.iter().collect();
    groups.sort_by(|a, b| (a.gid, &a.name).cmp(&(b.gid, &b.name)));
    let (mut passwd, mut shadow, mut group) = (String::new(), String::new(), String::new());
    for u in &users {
        for (what, v) in [("name", &u.name), ("home", &u.home), ("shell", &u.shell), ("description", &u.description)] {
            field(what, &u.name, v)?;
        }
        if u.name.is_empty() || u.name.contains([',', ' ']) {
            return Err(Error::Usage(format!("users: `{}` is not a user name", u.name)));
        }
        passwd += &format!("{}:x:{}:{}:{}:{}:{}\n", u.name, u.uid, u.gid, u.description, u.home, u.shell);
        shadow += &format!("{}:!:1::::::\n", u.name);
    }
    for g in &groups {
        field("name", &g.name, &g.name)?;
        if g.name.is_empty() || g.name.contains([',', ' ']) {
            return Err(Error::Usage(format!("groups: `{}` is not a group name", g.name)));
        }
        let mut members = g.members.clone();
        members.sort();
        members.dedup();
        for m in &members {
            if !users.iter().any(|u| &u.name == m) {
                return Err(Error::Usage(format!("groups: `{}` lists member `{m}`, who is not a user of the image", g.name)));
            }
        }
        group += &format!("{}:x:{}:{}\n", g.name, g.gid, members.join(","));
    }
    Ok(vec![
        DeclaredFile { path: "/etc/group".into(), data: group.into_bytes(), meta: Meta::root(0o644) },
        DeclaredFile { path: "/etc/passwd".into(), data: passwd.into_bytes(), meta: Meta::root(0o644) },
        DeclaredFile { path: "/etc/shadow".into(), data: shadow.into_bytes(), meta: Meta::root(0o600) },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u32) -> User {
        User { name: name.into(), uid, gid: uid, home: format!("/home/{name}"), shell: "/bin/sh".into(), description: String::new() }
    }

    #[test]
    fn files_are_sorted_by_id_whatever_the_order_of_declaration() {
        let root = User { home: "/root".into(), ..user("root", 0) };
        let groups = [Group { name: "app".into(), gid: 1000, members: vec!["app".into()] }, Group { name: "root".into(), gid: 0, members: vec![] }];
        let a = files(&[user("app", 1000), root.clone()], &groups).unwrap();
        let mut reversed = groups.to_vec();
        reversed.reverse();
        let b = files(&[root, user("app", 1000)], &reversed).unwrap();
        assert_eq!(a, b);
        let text = |i: usize| String::from_utf8(a[i].data.clone()).unwrap();
        assert_eq!(a[0].path, "/etc/group");
        assert_eq!(text(0), "root:x:0:\napp:x:1000:app\n");
        assert_eq!(text(1), "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
        assert_eq!(text(2), "root:!:1::::::\napp:!:1::::::\n");
        assert_eq!(a[2].meta, Meta::root(0o600));
    }

    #[test]
    fn no_accounts_no_files_and_bad_fields_are_refused() {
        assert!(files(&[], &[]).unwrap().is_empty());
        let bad = User { description: "a:b".into(), ..user("app", 1) };
        assert!(files(&[bad], &[]).unwrap_err().to_string().contains("description of `app`"));
        let stranger = Group { name: "g".into(), gid: 5, members: vec!["nobody-here".into()] };
        assert!(files(&[user("app", 1)], &[stranger]).unwrap_err().to_string().contains("member `nobody-here`"));
    }
}
