//! The image of every content argument (issue 19) and what an engine must show of it: the
//! store path `imageConfig.Cmd` names runs although `packages` leaves it out, as the declared
//! user, who can write in its home, `/tmp` (1777) and a declared directory; `perms` shows in
//! `stat`; the engine reports our `created`, labels and one history entry per layer.

use std::path::Path;
use std::process::Command;

use super::{nix_build, repo, run};

pub const HELLO: &str = "Hello from libgreeting 1.0, and hello, world!";
/// `created` of tests/nix/contents-image.nix.
pub const CREATED: &str = "2024-05-01T12:00:00Z";

/// The image with every content argument (tests/nix/contents-image.nix), with `more` (argument
/// bindings such as `format = "oci";`), `attr` of it (`.stream`, `.layout`, or empty), as a Nix
/// expression.
pub fn expr(tools: &Path, more: &str, attr: &str) -> String {
    format!("(import ./tests/nix/contents-image.nix {{ tools = {}; {more} }}){attr}", tools.display())
}

/// hello's store path in the example package set.
pub fn hello_path() -> String {
    let o = run(Command::new("nix-instantiate")
        .args(["--eval", "--read-write-mode", "--option", "substituters", "", "--expr", "(import ./examples/pkgs.nix { }).hello.outPath"])
        .current_dir(repo()));
    String::from_utf8(o.stdout).unwrap().trim().trim_matches('"').to_string()
}

/// The history entries the image's config holds, bottom layer first.
pub fn config_history(tools: &Path) -> Vec<String> {
    let out = nix_build(&["--expr", &expr(tools, "", "")]).trim().to_string();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let hex = m["manifest"]["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(m["layerLocations"][hex]["path"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(cfg["history"].as_array().unwrap().len(), m["manifest"]["layers"].as_array().unwrap().len(), "one history entry per layer");
    cfg["history"].as_array().unwrap().iter().map(|h| h["created_by"].as_str().unwrap().to_string()).collect()
}

/// Checks the loaded image `image` in an engine; `engine()` is its command (docker with its
/// socket, podman with its config).
pub fn check(engine: &dyn Fn() -> Command, image: &str, tools: &Path) {
    let out = |args: &[&str]| String::from_utf8(run(engine().args(args)).stdout).unwrap();
    // The default command: a store path only imageConfig names, run as user app (perms made it
    // 0750 with group 1000, so app runs it through its group).
    assert_eq!(out(&["run", "--rm", "--network", "none", image]).trim(), HELLO);
    let id = out(&["run", "--rm", "--network", "none", image, "/bin/busybox", "id"]);
    assert!(id.starts_with("uid=1000(app) gid=1000(app)") && id.contains("2000(staff)"), "{id}");
    let hello = hello_path();
    let script = format!(
        "echo home > /home/app/f && cat /home/app/f && echo t > /tmp/f && echo v > /var/lib/app/f && /bin/busybox stat -c '%a %u %g' /tmp /var/lib/app /home/app {hello}/bin/hello {hello}/share/doc/hello/README"
    );
    let lines = out(&["run", "--rm", "--network", "none", image, "/bin/sh", "-c", &script]);
    assert_eq!(lines, "home\n1777 0 0\n770 1000 2000\n755 1000 1000\n750 0 1000\n444 0 0\n", "written as app, then the modes and owners");
    // As root, the accounts files are there with their modes.
    let files = out(&["run", "--rm", "--network", "none", "--user", "0", image, "/bin/busybox", "stat", "-c", "%n %a", "/etc/passwd", "/etc/group", "/etc/shadow"]);
    assert_eq!(files, "/etc/passwd 644\n/etc/group 644\n/etc/shadow 600\n");
    // What the engine reports: created, labels, history (newest first) as the config says.
    let inspect: serde_json::Value = serde_json::from_str(&out(&["image", "inspect", image])).unwrap();
    let created = inspect[0]["Created"].as_str().unwrap();
    assert!(created.starts_with("2024-05-01T12:00:00"), "{created}");
    assert_eq!(inspect[0]["Config"]["Labels"]["org.example.team"], "images", "{inspect}");
    let mut expected = config_history(tools);
    expected.reverse();
    let history: Vec<String> = out(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", image]).lines().map(str::to_string).collect();
    assert_eq!(history, expected);
    assert!(history.iter().any(|h| h.contains("-hello-2.12")) && history[0].starts_with("customisation layer"), "{history:?}");
}
