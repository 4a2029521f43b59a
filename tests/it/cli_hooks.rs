//! `--on-complete PROGRAM` as a user sees it: a shell-script hook gets the
//! absolute path, the URL (credentials hidden) and the sha256 as arguments
//! and `HAUL_*` variables for each file the run downloads and none for
//! files skipped as complete; a failing hook is reported on stderr and in
//! `--json` with its output while haul still exits 0 with the file in
//! place; `--on-complete-jobs 1` never lets two hooks overlap; a missing
//! program is refused before any request.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::bodies::{assert_file_eq, body, sha256_hex};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

/// Writes an executable `#!/bin/sh` script `ROOT/name`.
fn hook(sb: &Sandbox, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = sb.write(name, format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the hook executable");
    path
}

/// Files in `dir`, sorted by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn hook_gets_path_url_and_sha256_as_arguments_and_environment() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let log = sb.root().join("hooklog");
    std::fs::create_dir(&log).expect("create hooklog/");
    // One file per hook run, named after the download: what it was given.
    let script = hook(
        &sb,
        "hook.sh",
        &format!(
            r#"f="{}/$(basename "$1")"
printf 'args=%s|%s|%s|%s\n' "$#" "$1" "$2" "$3" > "$f"
printf 'env=%s|%s|%s|%s|%s\n' "$HAUL_PATH" "$HAUL_URL" "$HAUL_SHA256" "$HAUL_BYTES" "$HAUL_OUT_DIR" >> "$f""#,
            log.display()
        ),
    );
    let files = [("a.bin", 1000usize), ("b.bin", 20_000), ("c.bin", 1)];
    let mut list = String::new();
    for (i, (name, len)) in files.iter().enumerate() {
        server.add_file(&format!("/{name}"), body(700 + i as u64, *len));
        let url = server.url(&format!("/{name}"));
        // The last one carries credentials, which a hook must not see.
        let url = if i == 2 {
            url.replace("http://", "http://user:s3cret@")
        } else {
            url
        };
        list.push_str(&format!("{url}\n  out=sub/{name}\n"));
    }
    sb.write("list.txt", list);
    let args = ["get", "-i", "list.txt", "-d", "dl", "--on-complete"];

    // A relative -d: the hook still gets absolute paths.
    let out = sb.haul(args).args([&script]).run();

    out.assert_code(0);
    assert_eq!(listing(&log), ["a.bin", "b.bin", "c.bin"], "{out}");
    let out_dir = sb.root().join("dl");
    for (i, (name, len)) in files.iter().enumerate() {
        let path = out_dir.join("sub").join(name);
        let sha = sha256_hex(&body(700 + i as u64, *len));
        let url = server.url(&format!("/{name}"));
        let url = if i == 2 {
            url.replace("http://", "http://user:***@")
        } else {
            url
        };
        let seen = std::fs::read_to_string(log.join(name)).expect("the hook's record");
        assert_eq!(
            seen,
            format!(
                "args=3|{p}|{url}|{sha}\nenv={p}|{url}|{sha}|{len}|{d}\n",
                p = path.display(),
                d = out_dir.display()
            ),
            "{out}"
        );
        assert!(!seen.contains("s3cret"));
    }
    assert!(out.stderr.contains("hooks: 3 ok, 0 failed"), "{out}");

    // Complete files are skipped without a request, and without a hook.
    std::fs::remove_dir_all(&log).expect("clear hooklog/");
    std::fs::create_dir(&log).expect("create hooklog/");
    let again = sb.haul(args).args([&script]).run();
    again.assert_code(0);
    assert!(
        listing(&log).is_empty(),
        "hooks ran for skipped files\n{again}"
    );
}

#[test]
fn a_failing_hook_is_reported_with_its_output_and_haul_still_exits_0() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let data = body(710, 5000);
    server.add_file("/a.bin", data.clone());
    let script = hook(
        &sb,
        "fail.sh",
        "echo \"uploading $1\"; echo 'bucket is full' >&2; exit 3",
    );
    let url = server.url("/a.bin");
    let script_arg = script.display().to_string();

    let plain = sb
        .haul([
            "get",
            &url,
            "-d",
            &sb.dir_arg(),
            "--on-complete",
            &script_arg,
        ])
        .run();

    plain.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &data);
    plain.assert_stderr_has(&[
        "hook failed a.bin: exit status 3",
        "hook   a.bin: bucket is full",
        &format!("hook   a.bin: uploading {}", sb.dl("a.bin").display()),
        "hooks: 0 ok, 1 failed",
    ]);
    assert_eq!(plain.done_lines().len(), 1, "{plain}");

    // The same with --json: a `hook` event, the summary counts it, exit 0.
    let sb = Sandbox::new();
    let json = sb
        .haul(["get", "--json", &url, "-d", &sb.dir_arg()])
        .args(["--on-complete", &script_arg])
        .run();

    json.assert_code(0);
    assert_file_eq(&sb.dl("a.bin"), &data);
    let lines = crate::support::json::json_lines(&json);
    let hooks = crate::support::json::events(&lines, "hook");
    assert_eq!(hooks.len(), 1, "{json}");
    let hook = hooks[0];
    assert_eq!(hook["id"], 0);
    assert_eq!(hook["path"], "a.bin");
    assert_eq!(hook["status"], 3);
    assert_eq!(hook["error"], Value::Null);
    assert_eq!(
        hook["stdout"],
        format!("uploading {}\n", sb.dl("a.bin").display())
    );
    assert_eq!(hook["stderr"], "bucket is full\n");
    assert!(hook["elapsed_secs"].as_f64().is_some(), "{hook}");
    let finished = lines.iter().position(|l| l["event"] == "finished");
    let hook_at = lines.iter().position(|l| l["event"] == "hook");
    assert!(finished < hook_at, "the hook follows its file\n{json}");
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["done"], 1);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["hooks_ok"], 0);
    assert_eq!(summary["hooks_failed"], 1);
}

#[test]
fn on_complete_jobs_1_never_runs_two_hooks_at_once() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let lock = sb.root().join("running");
    let record = sb.root().join("record.txt");
    // mkdir is atomic: a hook that cannot create the directory saw another
    // one still inside. The pause widens the window in which an overlap
    // would show; it synchronises nothing.
    let script = hook(
        &sb,
        "serial.sh",
        &format!(
            r#"if mkdir '{lock}' 2>/dev/null; then echo "in $(basename "$1")" >> '{rec}'; else echo OVERLAP >> '{rec}'; exit 1; fi
sleep 0.2
rmdir '{lock}'"#,
            lock = lock.display(),
            rec = record.display()
        ),
    );
    let mut list = String::new();
    for i in 0..6u64 {
        server.add_file(&format!("/f{i}.bin"), body(720 + i, 3000));
        list.push_str(&format!("{}\n", server.url(&format!("/f{i}.bin"))));
    }
    sb.write("list.txt", list);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg(), "-j", "6"])
        .args(["--on-complete-jobs", "1", "--on-complete"])
        .args([&script])
        .run();

    out.assert_code(0);
    let seen = std::fs::read_to_string(&record).expect("the hooks' record");
    assert!(
        !seen.contains("OVERLAP"),
        "two hooks overlapped:\n{seen}\n{out}"
    );
    assert_eq!(seen.lines().count(), 6, "one hook per file:\n{seen}");
    assert!(out.stderr.contains("hooks: 6 ok, 0 failed"), "{out}");
}

#[test]
fn a_missing_hook_program_is_refused_before_any_request() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(730, 10));

    let out = sb
        .haul(["get", &server.url("/a.bin"), "-d", &sb.dir_arg()])
        .args(["--on-complete", "./no-such-hook.sh"])
        .run();

    out.assert_code(2);
    out.assert_stderr_has(&["--on-complete", "no-such-hook.sh", "not found"]);
    assert!(server.requests().is_empty(), "no request may be made");
}
