//! The hook runner's tests: output tails, program lookup, settings, and
//! real shell-script hooks run through `tee` (exit codes, timeouts, Ctrl-C).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn tail_keeps_the_last_bytes_and_counts_the_rest() {
    let mut tail = Tail::new(8);
    tail.push(b"hello ");
    assert_eq!(tail.text(), "hello ");
    tail.push(b"world");
    assert_eq!(tail.text(), "[3 earlier bytes dropped]\nlo world");
    tail.push(b"0123456789abc");
    assert_eq!(tail.text(), "[16 earlier bytes dropped]\n56789abc");
}

#[test]
fn find_program_takes_paths_as_given_and_names_from_path() {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("hook.sh");
    std::fs::write(&prog, "#!/bin/sh\n").unwrap();
    assert_eq!(find_program(&prog, None), Some(prog.clone()));
    let path_var =
        std::env::join_paths(["/nonexistent-haul", dir.path().to_str().unwrap()]).unwrap();
    assert_eq!(
        find_program(Path::new("hook.sh"), Some(&path_var)),
        Some(prog.clone())
    );
    assert_eq!(find_program(Path::new("hook.sh"), None), None);
    assert_eq!(find_program(Path::new("nope"), Some(&path_var)), None);
    assert_eq!(
        find_program(&dir.path().join("nope"), Some(&path_var)),
        None
    );
    assert_eq!(find_program(dir.path(), None), None, "a directory");
    assert_eq!(find_program(Path::new(""), Some(&path_var)), None);
}

#[test]
fn config_rejects_zero_jobs_and_a_missing_program() {
    let sh = Path::new("/bin/sh");
    assert_eq!(
        HookConfig::new(sh.into(), 0, 0.0, None),
        Err(HookConfigError::ZeroJobs)
    );
    assert_eq!(
        HookConfig::new("/nonexistent/hook".into(), 1, 0.0, None),
        Err(HookConfigError::NotFound("/nonexistent/hook".into()))
    );
    let cfg = HookConfig::new(sh.into(), 2, 1.5, None).unwrap();
    assert_eq!(cfg.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        HookConfig::new(sh.into(), 2, 0.0, None).unwrap().timeout,
        None
    );
}

/// Writes an executable shell script into `dir`.
#[cfg(unix)]
fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("hook.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs `events` through [`tee`] with a hook; returns everything shown.
async fn run(
    program: PathBuf,
    timeout: Option<Duration>,
    events: Vec<Event>,
) -> (Vec<RunEvent>, HookTally) {
    let cfg = HookConfig {
        program,
        jobs: 2,
        timeout,
    };
    let runner = HookRunner::new(cfg, Path::new("/data/out"), CancellationToken::new());
    let (tx, rx) = mpsc::channel(16);
    for ev in events {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    let mut shown = Vec::new();
    let tally = tee(rx, Some(runner), |ev| shown.push(ev)).await;
    (shown, tally)
}

fn finished(id: JobId, path: &str) -> Event {
    Event::Finished {
        id,
        path: path.into(),
        bytes: 42,
        sha256: "ab".repeat(32),
    }
}

fn hook_dones(shown: &[RunEvent]) -> Vec<&HookDone> {
    shown
        .iter()
        .filter_map(|e| match e {
            RunEvent::Hook(done) => Some(done),
            RunEvent::Engine(_) => None,
        })
        .collect()
}

#[cfg(unix)]
#[tokio::test]
async fn hook_gets_absolute_path_url_and_sha_and_its_output_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let hook = script(
        dir.path(),
        r#"echo "args $1 $2 $3"; echo "env $HAUL_PATH $HAUL_URL $HAUL_BYTES $HAUL_OUT_DIR" >&2; exit 3"#,
    );
    let events = vec![
        Event::Queued {
            id: 0,
            path: "sub/a.bin".into(),
            url: "http://h/a.bin".parse().expect("a URL"),
        },
        finished(0, "sub/a.bin"),
    ];
    let (shown, tally) = run(hook, None, events).await;
    assert!(
        matches!(shown[1], RunEvent::Engine(Event::Finished { .. })),
        "shown as it came"
    );
    let dones = hook_dones(&shown);
    assert_eq!(dones.len(), 1);
    let HookDone {
        id,
        path,
        status,
        error,
        stdout,
        stderr,
        ..
    } = dones[0];
    assert_eq!((*id, path.as_str()), (0, "sub/a.bin"));
    assert_eq!(*status, Some(3));
    assert_eq!(*error, None);
    let sha = "ab".repeat(32);
    assert_eq!(
        stdout,
        &format!("args /data/out/sub/a.bin http://h/a.bin {sha}\n")
    );
    assert_eq!(
        stderr,
        "env /data/out/sub/a.bin http://h/a.bin 42 /data/out\n"
    );
    assert_eq!(
        tally,
        HookTally {
            ok: 0,
            failed: 1,
            not_run: 0
        }
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_hook_over_its_timeout_is_killed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    // exec: the shell itself becomes the sleeper, so killing it closes
    // the pipes at once.
    let hook = script(dir.path(), "echo started; exec sleep 30");
    let (shown, tally) = run(
        hook,
        Some(Duration::from_millis(200)),
        vec![finished(0, "a.bin")],
    )
    .await;
    let HookDone {
        status,
        error,
        stdout,
        elapsed,
        ..
    } = hook_dones(&shown)[0];
    assert_eq!(*status, None);
    assert!(
        error.as_deref().is_some_and(|e| e.contains("timed out")),
        "{error:?}"
    );
    assert_eq!(stdout, "started\n");
    assert!(*elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(tally.failed, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn a_program_that_cannot_start_is_a_failed_hook_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("plain.txt");
    std::fs::write(&not_exec, "not a program").unwrap();
    let (shown, tally) = run(
        not_exec,
        None,
        vec![finished(0, "a.bin"), finished(1, "b.bin")],
    )
    .await;
    let dones = hook_dones(&shown);
    assert_eq!(dones.len(), 2);
    for done in dones {
        let HookDone { status, error, .. } = done;
        assert_eq!(*status, None);
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.starts_with("cannot run")),
            "{error:?}"
        );
    }
    assert_eq!(tally.failed, 2);
}

#[cfg(unix)]
#[tokio::test]
async fn cancel_kills_running_hooks_and_drops_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    // Each hook says it started, then waits for ever.
    let hook = script(
        dir.path(),
        &format!("echo $HAUL_PATH >> '{}'; exec sleep 30", marker.display()),
    );
    let cancel = CancellationToken::new();
    let cfg = HookConfig {
        program: hook,
        jobs: 1,
        timeout: None,
    };
    let runner = HookRunner::new(cfg, dir.path(), cancel.clone());
    let (tx, rx) = mpsc::channel(16);
    for i in 0..3 {
        tx.send(finished(i, &format!("f{i}"))).await.unwrap();
    }
    let (shown_tx, mut shown_rx) = mpsc::unbounded_channel();
    let teed = tokio::spawn(tee(rx, Some(runner), move |ev| {
        let _ = shown_tx.send(ev);
    }));
    // The three Finished events pass first; the first hook is then running.
    for _ in 0..3 {
        shown_rx.recv().await.unwrap();
    }
    cancel.cancel();
    drop(tx);
    let tally = tokio::time::timeout(Duration::from_secs(20), teed)
        .await
        .expect("tee ends after a cancel")
        .unwrap();
    let mut errors = Vec::new();
    while let Ok(RunEvent::Hook(HookDone { error, .. })) = shown_rx.try_recv() {
        errors.push(error.unwrap_or_default());
    }
    errors.sort();
    assert_eq!(
        errors,
        [
            format!("killed: {INTERRUPTED}"),
            format!("not run: {INTERRUPTED}"),
            format!("not run: {INTERRUPTED}")
        ]
    );
    assert_eq!(
        tally,
        HookTally {
            ok: 0,
            failed: 1,
            not_run: 2
        }
    );
}
