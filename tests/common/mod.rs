//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod contents;
pub mod graphs;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workplace's shared data (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Records that `test` did not run, and why. Under CI that is a failure. Elsewhere the line goes
/// to the process's real standard error, which the test harness does not capture (it captures
/// only `print!`/`eprint!`), so a green local run still shows what it did not check; and it is
/// appended to `target/skipped-tests.txt`, which `tests/run.sh` counts in its summary.
pub fn skip(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why}, which is required under CI=true");
    }
    use std::io::Write as _;
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let record = repo().join("target/skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(record) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// True when `tool` runs; otherwise the test is skipped ([`skip`]).
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !found {
        skip(test, &format!("`{tool}` is not installed"));
    }
    found
}

/// Same as [`have_tool`] for a file the test needs, such as the shared data.
pub fn have_file(path: &Path, test: &str) -> bool {
    if !path.exists() {
        skip(test, &format!("{} is missing", path.display()));
        return false;
    }
    true
}

/// True when the tests run as root (as under CI): some cases need it, some cannot run as root.
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A store path for test graphs: a fixed-width fake hash, then the name.
pub fn sp(name: &str) -> String {
    let h: String = name.bytes().cycle().take(32).map(|b| (b'a' + b % 26) as char).collect();
    format!("/nix/store/{h}-{name}")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory with statically linked `bin/group-layers` and `bin/layer-hash`, built once per
/// test process: static, so the builders also run in the Nix sandbox, where only the store is.
pub fn static_tools() -> PathBuf {
    static TOOLS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let host = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
                .unwrap();
            let target_dir = repo().join("target/static");
            let st = Command::new(env!("CARGO"))
                .args(["build", "--release", "--bin", "group-layers", "--bin", "layer-hash", "--target", &host, "--target-dir"])
                .arg(&target_dir)
                .current_dir(repo())
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .status()
                .unwrap();
            assert!(st.success(), "building static tools failed");
            let dir = repo().join("target/nix-test-tools");
            std::fs::create_dir_all(dir.join("bin")).unwrap();
            for b in ["group-layers", "layer-hash"] {
                std::fs::copy(target_dir.join(&host).join("release").join(b), dir.join("bin").join(b)).unwrap();
            }
            dir
        })
        .clone()
}

/// `nix-build` with no binary cache (there is no network) and the given extra arguments;
/// returns stdout (the out paths) or panics with the log.
pub fn nix_build(args: &[&str]) -> String {
    let o = nix_build_output(args);
    assert!(o.status.success(), "nix-build {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

pub fn nix_build_output(args: &[&str]) -> std::process::Output {
    Command::new("nix-build")
        .args(["--option", "substituters", "", "--no-out-link"])
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// The arguments that build an image from the example package set with the static tools.
pub fn image_args(name: &str, packages: &str, pkgs_args: &str) -> Vec<String> {
    vec![
        "build-image.nix".into(),
        "--arg".into(),
        "pkgs".into(),
        format!("import ./examples/pkgs.nix {{ {pkgs_args} }}"),
        "--arg".into(),
        "tools".into(),
        static_tools().display().to_string(),
        "--argstr".into(),
        "name".into(),
        name.into(),
        "--argstr".into(),
        "packages".into(),
        packages.into(),
    ]
}

/// `nix-instantiate --eval --strict --json` of `expr`, in the repository; panics with the log.
pub fn eval_json(expr: &str) -> serde_json::Value {
    let o = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--read-write-mode", "--option", "substituters", "", "--expr", expr])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "eval failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every Nix test and client test needs these; under CI their absence is a failure.
pub fn have_nix(test: &str) -> bool {
    have_tool("nix-build", test) && have_file(Path::new("/usr/bin/busybox"), test)
}

/// A file's sha256 (hex), md5 (base64) and size as `sha256sum`, `openssl` and `stat` compute
/// them: tools outside this crate, for the tests that exist to check our digests. The caller
/// checks first that `sha256sum` and `openssl` are there ([`have_tool`]).
pub fn outside_digests(path: &Path) -> (String, String, u64) {
    let sh = |cmd: &str| {
        let o = Command::new("sh").arg("-c").arg(cmd).arg("sh").arg(path).output().unwrap();
        assert!(o.status.success(), "{cmd} {}: {}", path.display(), String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let sha256 = sh(r#"sha256sum < "$1""#).split(' ').next().unwrap().to_string();
    let md5 = sh(r#"openssl dgst -md5 -binary < "$1" | openssl enc -base64"#).trim().to_string();
    let size = sh(r#"stat -L -c %s "$1""#).trim().parse().unwrap();
    (sha256, md5, size)
}

/// The compressions, and the command that gives a blob's tar stream back on stdout.
pub const COMPRESSIONS: [(&str, &str); 3] = [("none", "cat"), ("gzip", "gzip -dc"), ("zstd", "zstd -dc")];

/// The sha256 of a blob's tar stream, decompressed by the system's own tool (`decompress`, from
/// [`COMPRESSIONS`]).
pub fn outside_diff_id(blob: &Path, decompress: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(format!("{decompress} < \"$1\" | sha256sum")).arg("sh").arg(blob).output().unwrap();
    assert!(o.status.success(), "{decompress}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().split(' ').next().unwrap().to_string()
}

/// The sha256 (hex) of bytes, as `sha256sum` computes it.
pub fn outside_digests_of_bytes(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap().split(' ').next().unwrap().to_string()
}

/// Runs `cmd` and returns its output; a failure is the test's, with both streams shown.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    o
}
