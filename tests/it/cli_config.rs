//! Defaults from a TOML config file (XDG location,
//! `HAUL_CONFIG`, `--config`), overridden by flags and skipped with
//! `--no-config`; a bad file exits 2 naming file, line and key before any
//! request; `haul completions SHELL` and `haul man` print what clap knows.

use std::path::Path;
use std::process::Command;

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{HaulCmd, Sandbox};
use crate::support::server::TestServer;

/// Runs `cmd` with these environment variables set (through `sh`, the one
/// way the shared helper offers to change a child's environment).
pub fn with_env(cmd: HaulCmd, vars: &[(&str, &Path)]) -> HaulCmd {
    let prelude: Vec<String> = vars
        .iter()
        .map(|(name, value)| {
            let quoted = value.display().to_string().replace('\'', r"'\''");
            format!("export {name}='{quoted}'")
        })
        .collect();
    cmd.under_shell(&prelude.join("; "))
}

/// `ROOT/xdg/haul/config.toml` holding `text`; returns `ROOT/xdg`.
fn xdg_config(sb: &Sandbox, text: &str) -> std::path::PathBuf {
    let xdg = sb.root().join("xdg");
    std::fs::create_dir_all(xdg.join("haul")).expect("create xdg/haul");
    std::fs::write(xdg.join("haul/config.toml"), text).expect("write config");
    xdg
}

const CONFIG: &str = "# haul defaults\n[get]\nuser-agent = \"from-config/1\"\n\
                      header = [\"X-From: config\"]\nmax-tries = 1\n";

#[test]
fn xdg_config_sets_defaults_and_flags_override_them() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(700, 5_000));
    server.add_file("/b.bin", body(701, 5_000));
    let xdg = xdg_config(&sb, CONFIG);
    let env = [("XDG_CONFIG_HOME", xdg.as_path())];

    let plain = sb.haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()]);
    with_env(plain, &env).run().assert_code(0);
    let flagged = sb
        .haul(["get", &server.url("/b.bin"), "-d", &sb.dir_arg()])
        .args(["--user-agent", "from-flag/2"]);
    with_env(flagged, &env).run().assert_code(0);

    assert_file_eq(&sb.dl("a.bin"), &body(700, 5_000));
    let a = &server.gets("/a.bin")[0];
    assert_eq!(a.header("user-agent"), Some("from-config/1"), "{a:?}");
    assert_eq!(a.header("x-from"), Some("config"), "{a:?}");
    let b = &server.gets("/b.bin")[0];
    assert_eq!(b.header("user-agent"), Some("from-flag/2"), "{b:?}");
    assert_eq!(b.header("x-from"), Some("config"), "{b:?}");
}

#[test]
fn explicit_config_beats_xdg_and_no_config_skips_both() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(702, 3_000));
    server.add_file("/b.bin", body(703, 3_000));
    let xdg = xdg_config(&sb, CONFIG);
    let explicit = sb.write("mine.toml", "[get]\nuser-agent = \"explicit/3\"\n");
    let env = [("XDG_CONFIG_HOME", xdg.as_path())];

    let cmd = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .args([Path::new("--config"), &explicit]);
    with_env(cmd, &env).run().assert_code(0);
    let cmd = sb
        .haul(["--no-config", "get", &server.url("/b.bin")])
        .args(["-d", &sb.dir_arg()]);
    with_env(cmd, &env).run().assert_code(0);

    let a = &server.gets("/a.bin")[0];
    assert_eq!(a.header("user-agent"), Some("explicit/3"), "{a:?}");
    assert_eq!(a.header("x-from"), None, "one file only: {a:?}");
    let b = &server.gets("/b.bin")[0];
    assert!(b
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("haul/")));
    assert_eq!(b.header("x-from"), None, "{b:?}");
}

#[test]
fn bad_config_exits_2_naming_file_line_and_key_before_any_request() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(704, 1_000));
    let cases = [
        (
            "[get]\njobs = 4\n\nmax-per-hots = 2\n",
            ":4:",
            "max-per-hots",
        ),
        ("[get]\njobs = \"lots\"\n", ":2:", "jobs"),
        ("[get]\nquiet = 1\n", ":2:", "quiet"),
        ("[gett]\njobs = 1\n", ":1:", "gett"),
        ("[get\n", ":1:", "config.toml"),
    ];
    for (text, line, key) in cases {
        let xdg = xdg_config(&sb, text);
        let cmd = sb.haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()]);
        let out = with_env(cmd, &[("XDG_CONFIG_HOME", xdg.as_path())]).run();
        out.assert_code(2);
        let path = xdg.join("haul/config.toml").display().to_string();
        out.assert_stderr_has(&[&format!("{path}{line}"), key]);
    }
    // A missing --config FILE is an error too; a missing XDG file is not.
    let out = sb
        .haul(["get", "--config", "nope.toml", &server.url("/a.bin")])
        .run();
    out.assert_code(2).assert_stderr_has(&["nope.toml"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn completion_scripts_name_the_flags_and_bash_accepts_its_own() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = sb.haul(["completions", shell]).run();
        out.assert_code(0);
        assert!(out.stdout.contains("max-per-host"), "{shell}:\n{out}");
        assert!(out.stdout.contains("netrc-file"), "{shell}:\n{out}");
    }
    let script = sb.haul(["completions", "bash"]).run().stdout.clone();
    assert!(script.contains("--max-per-host"));
    let path = sb.write("haul.bash", &script);
    let check = Command::new("bash").arg("-n").arg(&path).output();
    let check = check.expect("run bash -n");
    assert!(check.status.success(), "{check:?}");
    sb.haul(["completions", "tcsh"]).run().assert_code(2);
}

#[test]
fn man_prints_haul_1_and_writes_a_page_per_command() {
    let sb = Sandbox::new();
    let out = sb.haul(["man"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains(".TH haul 1"), "{out}");
    assert!(out.stdout.contains("completions"), "{out}");

    let pages = sb.root().join("man1");
    sb.haul([Path::new("man"), Path::new("--out"), &pages])
        .run()
        .assert_code(0);
    let get = std::fs::read_to_string(pages.join("haul-get.1")).expect("haul-get.1");
    assert!(get.contains(".TH haul-get 1"), "{get}");
    assert!(get.contains("max\\-per\\-host"), "{get}");
    assert!(pages.join("haul.1").is_file());
}
