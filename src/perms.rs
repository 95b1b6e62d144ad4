//! Owner and mode overrides for store contents: the `perms` argument of build-image.nix.
//!
//! A store path's files keep the store's modes and root's ownership unless a rule says otherwise.
//! A rule names a store path of the layer, a regular expression matched against the *whole* path
//! of each entry below that store path, relative to it (`bin/hello`; the store path itself is the
//! empty string), and the mode, uid and gid to set where it matches. Where several rules match,
//! later ones win, field by field. A symbolic link takes the owner but keeps mode 0777: no system
//! reads a link's mode. A rule that matches nothing is an error, as a typo in it would otherwise
//! silently leave files as they were.
//!
//! Only the layer holding the store path is given its rules, so every other layer stays the same
//! derivation, shared with images that have no rules.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::tarball::Meta;

/// One entry of `perms`, as build-image.nix passes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermSpec {
    /// The store path whose contents the rule covers.
    pub path: PathBuf,
    /// Matched against the whole relative path of each entry; default: every entry.
    #[serde(default = "every_entry")]
    pub regex: String,
    /// Permission bits as octal text (`"0755"`, `"4755"`); default: the store's.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

fn every_entry() -> String {
    ".*".into()
}

/// Permission bits from octal text: one to four octal digits, at most 7777.
pub fn parse_mode(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok()
}

/// A compiled rule, counting the entries it matched.
#[derive(Debug)]
pub struct Rule {
    pub path: PathBuf,
    source: String,
    regex: regex::bytes::Regex,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    matched: Cell<u64>,
}

impl Rule {
    pub fn compile(spec: &PermSpec) -> Result<Rule> {
        let what = || format!("perms entry for {} (regex `{}`)", spec.path.display(), spec.regex);
        let mode = match &spec.mode {
            None => None,
            Some(m) => Some(parse_mode(m).ok_or_else(|| Error::Usage(format!("{}: mode `{m}` is not octal permission bits such as \"0755\"", what())))?),
        };
        if mode.is_none() && spec.uid.is_none() && spec.gid.is_none() {
            return Err(Error::Usage(format!("{}: sets nothing (give mode, uid or gid)", what())));
        }
        // Anchored at both ends: the regex must match the whole relative path.
        let regex = regex::bytes::Regex::new(&format!("^(?:{})$", spec.regex))
            .map_err(|e| {
                // The regex crate's message draws a caret under the pattern over several lines;
                // its last line says what is wrong.
                let text = e.to_string();
                let why = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").trim_start_matches("error: ").to_string();
                Error::Usage(format!("{}: not a valid regular expression: {why}", what()))
            })?;
        Ok(Rule { path: spec.path.clone(), source: spec.regex.clone(), regex, mode, uid: spec.uid, gid: spec.gid, matched: Cell::new(0) })
    }

    /// Sets `meta` where the rule matches `below`, the entry's path relative to the store path.
    pub fn apply(&self, below: &[u8], symlink: bool, meta: &mut Meta) {
        if !self.regex.is_match(below) {
            return;
        }
        self.matched.set(self.matched.get() + 1);
        if let (Some(mode), false) = (self.mode, symlink) {
            meta.mode = mode;
        }
        if let Some(uid) = self.uid {
            meta.uid = uid;
        }
        if let Some(gid) = self.gid {
            meta.gid = gid;
        }
    }

    pub fn matched(&self) -> u64 {
        self.matched.get()
    }
}

/// The rules of a layer, checked against the layer's store paths.
#[derive(Debug, Default)]
pub struct Perms {
    rules: Vec<Rule>,
}

impl Perms {
    /// Compiles `specs`; each must name one of `paths` (the layer's, already trimmed and sorted),
    /// with its path given the way `paths` spell it.
    pub fn new(specs: &[PermSpec], paths: &[PathBuf]) -> Result<Perms> {
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let rule = Rule::compile(spec)?;
            let trimmed: PathBuf = rule.path.components().collect();
            if !paths.contains(&trimmed) {
                return Err(Error::Usage(format!(
                    "perms entry for {}: that store path is not in this layer (its paths: {})",
                    spec.path.display(),
                    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            rules.push(Rule { path: trimmed, ..rule });
        }
        Ok(Perms { rules })
    }

    /// The rules for the store path `path`, in order.
    pub fn for_path(&self, path: &Path) -> Vec<&Rule> {
        self.rules.iter().filter(|r| r.path == path).collect()
    }

    /// Fails on the first rule that matched no entry.
    pub fn check_all_matched(&self) -> Result<()> {
        match self.rules.iter().find(|r| r.matched() == 0) {
            None => Ok(()),
            Some(r) => Err(Error::Usage(format!(
                "perms entry for {} (regex `{}`) matched no entry: the regex is matched against whole paths relative to the store path, such as `bin/hello` (the store path itself is the empty string)",
                r.path.display(),
                r.source
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(regex: &str, mode: Option<&str>, uid: Option<u32>) -> PermSpec {
        PermSpec { path: "/nix/store/x-p".into(), regex: regex.into(), mode: mode.map(String::from), uid, gid: None }
    }

    #[test]
    fn modes_are_octal_text_up_to_7777() {
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("7777"), Some(0o7777));
        for bad in ["", "8", "07777", "rwx", "-1", "0x1"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_rule_matches_whole_relative_paths_and_later_rules_win() {
        let paths = vec![PathBuf::from("/nix/store/x-p")];
        let perms = Perms::new(&[spec("bin/.*", Some("0700"), Some(5)), spec("bin/b", Some("0711"), None)], &paths).unwrap();
        let rules = perms.for_path(&paths[0]);
        let meta_of = |below: &[u8], symlink| {
            let mut m = Meta::root(0o555);
            for r in &rules {
                r.apply(below, symlink, &mut m);
            }
            m
        };
        assert_eq!(meta_of(b"bin/a", false), Meta { mode: 0o700, uid: 5, gid: 0 });
        assert_eq!(meta_of(b"bin/b", false), Meta { mode: 0o711, uid: 5, gid: 0 });
        // Not a prefix match: `bin` itself and `sbin/a` are not below `bin/`.
        assert_eq!(meta_of(b"bin", false), Meta::root(0o555));
        assert_eq!(meta_of(b"sbin/a", false), Meta::root(0o555));
        // A link takes the owner, not the mode.
        assert_eq!(meta_of(b"bin/link", true), Meta { mode: 0o555, uid: 5, gid: 0 });
        perms.check_all_matched().unwrap();
    }

    #[test]
    fn bad_rules_are_errors_naming_the_entry() {
        let paths = vec![PathBuf::from("/nix/store/x-p")];
        let e = |s: PermSpec| Perms::new(&[s], &paths).unwrap_err().to_string();
        assert!(e(spec("(", Some("0755"), None)).contains("not a valid regular expression"));
        assert!(e(spec(".*", Some("0999"), None)).contains("mode `0999`"));
        assert!(e(spec(".*", None, None)).contains("sets nothing"));
        let other = PermSpec { path: "/nix/store/y-q".into(), ..spec(".*", Some("0755"), None) };
        assert!(e(other).contains("/nix/store/y-q: that store path is not in this layer"));
        let unmatched = Perms::new(&[spec("nothing-here", Some("0755"), None)], &paths).unwrap();
        assert!(unmatched.check_all_matched().unwrap_err().to_string().contains("matched no entry"));
    }
}
