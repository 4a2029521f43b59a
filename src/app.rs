//! Wires validated config to the engine and a renderer, handles Ctrl-C and
//! SIGTERM, and turns outcomes into exit codes. It prints nothing itself:
//! `ui` does.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{
    Cli, Command, CompletionsArgs, DemoArgs, GetArgs, ManArgs, ServeArgs, VerifyArgs,
};
use crate::config::GetConfig;
use crate::event::{Event, FailureKind, Report};
use crate::hooks::RunEvent;
use crate::ui::{self, human_duration, lines};

mod status_run;
mod verify_run;

pub use crate::exit::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};

use verify_run::{verify_cmd, write_done_sums};

/// Threads for blocking file work.
const BLOCKING_THREADS: usize = 32;

/// Depth of the engine -> renderer channel; progress beyond it is dropped.
const EVENT_QUEUE: usize = 1024;

/// Runs one command; an `Err` is reported by `main` and exits with `EXIT_USAGE`.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    // These only print what clap knows: no runtime needed.
    match cli.command {
        Command::Completions(args) => return completions(args),
        Command::Man(args) => return man(args),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // File work is short and mostly waits on the disk together; a few
        // dozen threads keep it moving without a stack and malloc arena
        // each for hundreds (tokio's default allows 512).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Get(args) => get(args).await,
            Command::Verify(args) => verify_cmd(args).await,
            Command::Status(args) => status_run::status(args),
            Command::Serve(args) => serve(args).await,
            Command::Demo(args) => demo(args).await,
            Command::Completions(_) | Command::Man(_) => Ok(EXIT_OK),
        }
    })
}

/// The exit code a finished `get` run earns.
pub fn exit_code(report: &Report) -> u8 {
    if report.cancelled {
        EXIT_INTERRUPTED
    } else if report.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

async fn get(args: GetArgs) -> anyhow::Result<u8> {
    check_dir(&args.dir)?;
    let cancel = on_signal();
    let mut cfg = GetConfig::from_args(args)?;
    let config_warnings = std::mem::take(&mut cfg.warnings);
    let client = cfg.client;
    let out_dir = cfg.engine.out_dir.clone();
    let shard = cfg.engine.shard;
    let write_sums = cfg.write_sums.clone();
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let mode = if cfg.json {
        ui::UiMode::Json
    } else {
        ui::choose(cfg.quiet)
    };
    // Before the run, while there is still time to stop it and fix the
    // flags; with --json the summary line carries them instead.
    if mode != ui::UiMode::Json {
        for warning in &config_warnings {
            lines::warning(warning);
        }
    }
    // --on-complete hooks hang off the event stream, not the engine: the
    // renderer's task starts one per finished file and shows how each
    // ended, and it ends only once every hook has (Ctrl-C kills them).
    let hooks = cfg
        .hooks
        .map(|hooks| crate::hooks::HookRunner::new(hooks, &out_dir, cancel.clone()));
    // The renderer runs as a task: its writes are small (bars redraw at
    // most ten times a second), and a task needs no thread wake-up per event.
    let renderer = tokio::spawn(async move {
        let mut renderer = ui::renderer(mode);
        let tally = crate::hooks::tee(rx, hooks, |shown| match shown {
            RunEvent::Engine(event) => match flag_hint(&event) {
                Some(hinted) => renderer.event(&hinted),
                None => renderer.event(&event),
            },
            RunEvent::Hook(done) => renderer.hook(&done),
        })
        .await;
        (renderer, tally)
    });
    let (jobs, list_feed) = cfg.jobs.start();
    // A task too: awaited here it would run on the main thread, outside
    // the worker pool, and every job's end would wake that thread (1,100 of
    // 10,500 context switches on 2,000 small files).
    let engine = tokio::spawn(crate::engine::run(cfg.engine, client, jobs, tx, cancel));
    let result = match engine.await {
        Ok(result) => result,
        Err(_) => bail!("the download engine crashed"),
    };
    let (mut renderer, hooks) = match renderer.await {
        Ok(done) => done,
        Err(_) => bail!("the progress display crashed"),
    };
    let mut report = result?;
    if mode == ui::UiMode::Json {
        report.warnings.splice(0..0, config_warnings);
    }
    // A hook's failure is reported beside the report, never counted in it
    // (and so never changes the exit code).
    renderer.finish(&report, &hooks);
    // With --json the summary line carries the warnings.
    if mode != ui::UiMode::Json {
        for warning in &report.warnings {
            lines::warning(warning);
        }
    }
    if report.cancelled {
        lines::resume_hint(&out_dir);
    }
    // The list is read a second time as the run goes: if that reading
    // failed, jobs after the failure never ran, and the run must not pass
    // for complete.
    list_feed.finish()?;
    if let Some(dest) = &write_sums {
        write_done_sums(&out_dir, shard, dest)?;
    }
    Ok(exit_code(&report))
}

/// How the engine's "exists" failure ends (`DownloadError::Exists`), as
/// the manifest records it; a unit test keeps the two in step.
const EXISTS: &str = " exists and was not downloaded by haul";

/// What the command line adds to an "exists" failure.
const OVERWRITE_HINT: &str = " (pass --allow-overwrite to replace it)";

/// The event with the flag that fixes its failure named, when a flag does:
/// the engine's messages are the library's too, and do not name flags.
fn flag_hint(event: &Event) -> Option<Event> {
    match event {
        Event::Failed {
            id,
            path,
            kind: FailureKind::Exists,
            error,
        } => Some(Event::Failed {
            id: *id,
            path: path.clone(),
            kind: FailureKind::Exists,
            error: error.noted(OVERWRITE_HINT),
        }),
        _ => None,
    }
}

/// `haul completions SHELL`: the script on stdout.
fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "haul", &mut script);
    to_stdout(&script)
}

/// `haul man`: haul(1) on stdout, or every page into `--out DIR`.
fn man(args: ManArgs) -> anyhow::Result<u8> {
    if let Some(dir) = args.out {
        std::fs::create_dir_all(&dir)
            .and_then(|()| crate::man::write_pages(Cli::command(), &dir))
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        return Ok(EXIT_OK);
    }
    let page = crate::man::render(Cli::command()).context("cannot render the man page")?;
    to_stdout(&page)
}

/// Writes generated text to stdout; a closed pipe (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<u8> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to standard output")
        }
        _ => Ok(EXIT_OK),
    }
}

/// Cancels the returned token on the first Ctrl-C or SIGTERM; a second one
/// exits at once. The handlers are installed before this returns, not when
/// the task first runs: a signal during start-up must stop the run cleanly,
/// not kill haul with the default action.
fn on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let Ok(mut signals) = Signals::install() else {
        return cancel;
    };
    let token = cancel.clone();
    tokio::spawn(async move {
        signals.next().await;
        token.cancel();
        signals.next().await;
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
    cancel
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A list checked whole (a bad line refuses it with FILE:LINE before
/// anything else happens), and its jobs read again, for the commands that
/// read a list without running it (`verify -i`, `status -i`); with its name.
fn checked_list_jobs(
    list: &str,
) -> anyhow::Result<(
    impl Iterator<Item = std::io::Result<crate::engine::JobSpec>> + Send,
    String,
)> {
    use crate::plan::list_file::{check, CheckListError};
    let (file, name) = crate::config::open_list(list)?;
    let checked =
        check(Vec::new(), Some((file, name.clone())), |_| {}).map_err(|err| -> anyhow::Error {
            match err {
                CheckListError::Read(err) => {
                    anyhow::Error::new(err).context(format!("cannot read {name}"))
                }
                CheckListError::List(err) => err.into(),
            }
        })?;
    Ok((checked.into_jobs(), name))
}

/// Refuses a `-d` that cannot be a directory before anything reads or
/// writes there: the nearest existing one of DIR and its parents must be a
/// directory (a symbolic link to one is fine), so `-d FILE` and `-d
/// FILE/sub` are named as they are, not as an "os error 17" from deep
/// inside. Anything this cannot look at is left to the code that uses DIR.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    for at in dir.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) if at == dir => bail!("{} is not a directory", dir.display()),
            Ok(_) => bail!("-d {}: {} is not a directory", dir.display(), at.display()),
            // Missing (it will be created) or under a file (a parent says).
            Err(_) => continue,
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    if !args.root.is_dir() {
        bail!("{} is not a directory", args.root.display());
    }
    let addr = format!("{}:{}", args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    lines::note(&format!(
        "serving {} on http://{local}/ (Ctrl-C to stop)",
        args.root.display()
    ));
    let cancel = on_signal();
    let opts = crate::serve::ServeOptions {
        limit_rate: args.limit_rate,
    };
    crate::serve::serve(listener, args.root, opts, cancel).await?;
    Ok(EXIT_OK)
}

/// Per-connection rate of the demo server: slow enough that the bars are
/// worth watching for a few seconds, fast enough not to bore.
const DEMO_RATE: u64 = 8 << 20;

async fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let src = std::env::temp_dir().join("haul-demo-src");
    std::fs::create_dir_all(&src).with_context(|| format!("cannot create {}", src.display()))?;
    let gen_dir = src.clone();
    let files = tokio::task::spawn_blocking(move || {
        crate::demo::generate(
            &gen_dir,
            &crate::demo::default_set(),
            crate::demo::DEFAULT_SEED,
        )
    })
    .await
    .context("demo data generation crashed")?
    .with_context(|| format!("cannot write demo files into {}", src.display()))?;
    // Fixed mtimes keep the served ETags stable across demo runs, so an
    // interrupted demo resumes instead of restarting.
    for file in &files {
        let path = src.join(&file.name);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            })
            .with_context(|| format!("cannot set the time of {}", path.display()))?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::serve::serve(
        listener,
        src.clone(),
        crate::serve::ServeOptions {
            limit_rate: Some(DEMO_RATE),
        },
        shutdown.clone(),
    ));
    // The source directory is shared by every demo on the machine; the list
    // names this run's port, so it is this process's own.
    let list = src.join(format!("urls-{}.txt", std::process::id()));
    std::fs::write(&list, crate::demo::url_list(&base, &files))
        .with_context(|| format!("cannot write {}", list.display()))?;
    lines::note(&format!(
        "demo: serving {} generated files from {base}, downloading into {}",
        files.len(),
        args.dir.display()
    ));
    let dir = args.dir.display().to_string();
    let list_arg = list.display().to_string();
    let cli = Cli::try_parse_from(["haul", "get", "-i", &list_arg, "-d", &dir])?;
    let Command::Get(get_args) = cli.command else {
        bail!("internal error: demo built the wrong command");
    };
    let code = get(get_args).await;
    let _ = std::fs::remove_file(&list);
    let code = code?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    if code != EXIT_OK {
        return Ok(code);
    }
    lines::note(&format!(
        "demo: re-hashing what was downloaded (haul verify -d {dir})"
    ));
    let verified = verify_cmd(VerifyArgs {
        dir: args.dir.clone(),
        checksums: None,
        input: None,
        done_only: false,
        quiet: false,
        write_sums: None,
        json: false,
    })
    .await?;
    lines::note(&format!(
        "demo: done in {}. Run it again: complete files are skipped without a request.",
        human_duration(started.elapsed())
    ));
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: FailureKind) -> Event {
        Event::Failed {
            id: 0,
            path: "f".into(),
            kind,
            error: "f exists and was not downloaded by haul".into(),
        }
    }

    #[test]
    fn the_cli_names_the_flag_that_replaces_an_existing_file() {
        let hinted = flag_hint(&failed(FailureKind::Exists));
        let error = match hinted {
            Some(Event::Failed { error, .. }) => error,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            error,
            "f exists and was not downloaded by haul (pass --allow-overwrite to replace it)"
        );
        assert_eq!(flag_hint(&failed(FailureKind::Io)), None);
    }

    #[test]
    fn status_recognises_the_engines_exists_message() {
        let err = crate::error::DownloadError::Exists { path: "a/b".into() };
        assert!(err.to_string().ends_with(EXISTS), "{err}");
        assert_eq!(err.kind(), FailureKind::Exists);
    }
}
