//! The config file (`$XDG_CONFIG_HOME/haul/config.toml`, `HAUL_CONFIG` or
//! `--config FILE`) and the one parse of the command line that honours it.
//!
//! The file holds one TOML table per command, keyed by the command's long
//! flag names (`[get]` with `jobs = 16`, `max-per-host = 8`, `header =
//! ["X-A: b"]`, `allow-overwrite = true`, ...). Each value becomes the
//! flag's *default* in the clap definition before the real parse, so a flag
//! given on the command line wins, the file comes next and the built-in
//! default last, and every value goes through the same parser as the flag.
//! Values are checked here first so that a bad one exits 2 naming the file,
//! the line and the key rather than a flag the user never typed.
//!
//! Aliases (`tries`, `max-connection-per-server`, `lowest-speed-limit`) are
//! not keys: one name per setting keeps files greppable and stops one
//! setting from being given twice under two names, which TOML's own
//! duplicate-key check cannot see. The error names the key to write.
//!
//! This module owns where the file is and what it may say; it does not
//! validate settings beyond what the flags' own parsers do (`config` does),
//! and it never prints.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, CommandFactory, FromArgMatches};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::cli::Cli;

/// Environment variable naming the config file (below `--config`).
pub const CONFIG_ENV: &str = "HAUL_CONFIG";

/// Why the command line could not be turned into a `Cli`.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// Bad usage, or `--help` / `--version`: `clap::Error::exit` prints it
    /// and exits with the right code.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The config file is missing, unreadable or wrong (exit 2).
    #[error(transparent)]
    File(#[from] ConfigFileError),
}

/// A config file that cannot be used. Every variant names the file and,
/// where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: '{key}' must sit in a command's section, e.g. [get]")]
    TopLevel {
        file: String,
        line: usize,
        key: String,
    },
    #[error("{file}:{line}: unknown section [{section}] (sections are commands: {known})")]
    UnknownSection {
        file: String,
        line: usize,
        section: String,
        known: String,
    },
    #[error("{file}:{line}: unknown key '{key}' in [{section}] (keys are the long flag names of haul {section})")]
    UnknownKey {
        file: String,
        line: usize,
        section: String,
        key: String,
    },
    #[error("{file}:{line}: '{key}' in [{section}] is an alias: write '{name}' (keys are the long flag names of haul {section})")]
    AliasKey {
        file: String,
        line: usize,
        section: String,
        key: String,
        name: String,
    },
    #[error("{file}:{line}: '{key}' in [{section}] {problem}")]
    WrongType {
        file: String,
        line: usize,
        section: String,
        key: String,
        problem: &'static str,
    },
    #[error("{file}:{line}: '{key}' in [{section}]: {reason}")]
    Invalid {
        file: String,
        line: usize,
        section: String,
        key: String,
        reason: String,
    },
}

/// Where the config file is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    /// `--no-config`, or no home directory to look in.
    None,
    /// The XDG default: used if it exists.
    Optional(PathBuf),
    /// Named by `--config` or [`CONFIG_ENV`]: must exist.
    Required(PathBuf),
}

/// Picks the config file: `--no-config`, then `--config`, then
/// `$HAUL_CONFIG`, then `$XDG_CONFIG_HOME/haul/config.toml`, where an unset,
/// empty or relative `XDG_CONFIG_HOME` means `$HOME/.config` (as the XDG
/// base directory spec says).
pub fn locate(
    explicit: Option<&Path>,
    no_config: bool,
    env: impl Fn(&str) -> Option<OsString>,
) -> ConfigLocation {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if no_config {
        return ConfigLocation::None;
    }
    if let Some(path) = explicit {
        return ConfigLocation::Required(path.to_path_buf());
    }
    if let Some(path) = set(CONFIG_ENV) {
        return ConfigLocation::Required(path);
    }
    let base = match set("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        Some(base) => base,
        None => match set("HOME") {
            Some(home) => home.join(".config"),
            None => return ConfigLocation::None,
        },
    };
    ConfigLocation::Optional(base.join("haul").join("config.toml"))
}

/// Parses the process's command line with the config file's defaults.
pub fn parse_args_from_env() -> Result<Cli, ArgsError> {
    parse_args(std::env::args_os(), |name| std::env::var_os(name))
}

/// Parses `argv` (program name first) into a [`Cli`], with defaults from
/// the config file that `--config`, `--no-config` and `env` point at.
pub fn parse_args<I, T>(argv: I, env: impl Fn(&str) -> Option<OsString>) -> Result<Cli, ArgsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut cmd = Cli::command();
    // A first parse only to learn --config / --no-config. If it fails
    // (a typo, or --help), the second one fails or prints the same way.
    if let Ok(first) = cmd.clone().try_get_matches_from(&argv) {
        let explicit = first.get_one::<PathBuf>("config").cloned();
        let location = locate(explicit.as_deref(), first.get_flag("no_config"), env);
        if let Some((path, text)) = read(&location)? {
            cmd = apply(cmd, &text, &path.display().to_string())?;
        }
    }
    let matches = cmd.try_get_matches_from_mut(&argv).map_err(suggest_get)?;
    Cli::from_arg_matches(&matches).map_err(|err| ArgsError::Clap(err.format(&mut cmd)))
}

/// `haul URL` (as `curl URL` and `aria2c URL` go) is a likely slip: an
/// unknown command that looks like a URL gets a tip naming `haul get URL`.
fn suggest_get(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::InvalidSubcommand {
        return err;
    }
    let Some(ContextValue::String(word)) = err.get(ContextKind::InvalidSubcommand) else {
        return err;
    };
    if !word.contains("://") {
        return err;
    }
    let tip = format!("to download it, run 'haul get {word}'");
    err.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.into()]),
    );
    err
}

/// The file's path and text, if there is one to use.
fn read(location: &ConfigLocation) -> Result<Option<(PathBuf, String)>, ConfigFileError> {
    let (path, required) = match location {
        ConfigLocation::None => return Ok(None),
        ConfigLocation::Optional(path) => (path, false),
        ConfigLocation::Required(path) => (path, true),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.clone(), text))),
        Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigFileError::Read {
            path: path.clone(),
            source,
        }),
    }
}

/// Returns `cmd` with the defaults `text` sets; `file` names it in errors.
pub fn apply(
    mut cmd: clap::Command,
    text: &str,
    file: &str,
) -> Result<clap::Command, ConfigFileError> {
    let doc = DeTable::parse(text).map_err(|err| ConfigFileError::Syntax {
        file: file.to_string(),
        line: err.span().map_or(1, |span| line_of(text, span.start)),
        message: err.message().trim().to_string(),
    })?;
    for (section, value) in doc.get_ref() {
        let at = Place {
            file,
            line: line_of(text, section.span().start),
            section: section.get_ref(),
        };
        let DeValue::Table(table) = value.get_ref() else {
            return Err(ConfigFileError::TopLevel {
                file: file.to_string(),
                line: at.line,
                key: at.section.to_string(),
            });
        };
        let defaults = section_defaults(&cmd, &at, table, text)?;
        cmd = cmd.mut_subcommand(at.section, |mut sub| {
            for (id, values) in defaults {
                sub = sub.mut_arg(id, |arg| arg.default_values(values));
            }
            sub
        });
    }
    Ok(cmd)
}

/// Where a value sits, for messages.
struct Place<'a> {
    file: &'a str,
    line: usize,
    section: &'a str,
}

impl Place<'_> {
    fn at(&self, line: usize) -> Place<'_> {
        Place { line, ..*self }
    }
}

/// The (arg id, default values) pairs one `[section]` sets, checked.
fn section_defaults(
    cmd: &clap::Command,
    at: &Place<'_>,
    table: &DeTable<'_>,
    text: &str,
) -> Result<Vec<(clap::Id, Vec<String>)>, ConfigFileError> {
    let Some(sub) = cmd.find_subcommand(at.section).filter(|s| configurable(s)) else {
        let known: Vec<&str> = cmd
            .get_subcommands()
            .filter(|s| configurable(s))
            .map(|s| s.get_name())
            .collect();
        return Err(ConfigFileError::UnknownSection {
            file: at.file.to_string(),
            line: at.line,
            section: at.section.to_string(),
            known: known.join(", "),
        });
    };
    let mut probe = sub.clone();
    let mut defaults = Vec::new();
    for (key, value) in table {
        let here = at.at(line_of(text, key.span().start));
        let key = key.get_ref().as_ref();
        let Some(arg) = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(key) && !NOT_KEYS.contains(&key))
        else {
            let flag = sub.get_arguments().find(|a| {
                a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&key))
            });
            if let Some(name) = flag.and_then(|a| a.get_long()) {
                return Err(ConfigFileError::AliasKey {
                    file: at.file.to_string(),
                    line: here.line,
                    section: at.section.to_string(),
                    key: key.to_string(),
                    name: name.to_string(),
                });
            }
            return Err(ConfigFileError::UnknownKey {
                file: at.file.to_string(),
                line: here.line,
                section: at.section.to_string(),
                key: key.to_string(),
            });
        };
        let wrong = |problem| ConfigFileError::WrongType {
            file: at.file.to_string(),
            line: here.line,
            section: at.section.to_string(),
            key: key.to_string(),
            problem,
        };
        let values = values_for(arg, value).map_err(wrong)?;
        check(&mut probe, arg, key, &values).map_err(|reason| ConfigFileError::Invalid {
            file: at.file.to_string(),
            line: here.line,
            section: at.section.to_string(),
            key: key.to_string(),
            reason,
        })?;
        defaults.push((arg.get_id().clone(), values));
    }
    Ok(defaults)
}

/// Long flags that are not keys: `out` (`get -o`) names the file of one
/// URL, so as a default it would name every run's file the same.
const NOT_KEYS: &[&str] = &["help", "version", "out"];

/// Commands whose flags a config file may set: not the ones that only
/// print what clap knows.
fn configurable(sub: &clap::Command) -> bool {
    !matches!(sub.get_name(), "completions" | "man" | "help")
}

/// The flag's value(s) as command-line strings, or what is wrong with the
/// TOML type.
fn values_for(arg: &clap::Arg, value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, &'static str> {
    match arg.get_action() {
        ArgAction::SetTrue => match value.get_ref() {
            DeValue::Boolean(b) => Ok(vec![b.to_string()]),
            _ => Err("must be true or false"),
        },
        ArgAction::Append => match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|item| scalar(item.get_ref()).ok_or("must be a list of strings"))
                .collect(),
            other => scalar(other)
                .map(|v| vec![v])
                .ok_or("must be a string or a list of strings"),
        },
        ArgAction::Set => match value.get_ref() {
            DeValue::Boolean(_) => Err("takes a value, not true or false"),
            DeValue::Array(_) => Err("takes one value, not a list"),
            other => scalar(other)
                .map(|v| vec![v])
                .ok_or("must be a string or a number"),
        },
        _ => Err("cannot be set in a config file"),
    }
}

/// A string or number as the user would type it.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        _ => None,
    }
}

/// Runs the values through the flag's own parser, so a bad value is
/// reported against the file and not against a flag the user never typed.
fn check(
    probe: &mut clap::Command,
    arg: &clap::Arg,
    key: &str,
    values: &[String],
) -> Result<(), String> {
    let mut argv = vec![probe.get_name().to_string()];
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        if values.iter().any(|v| v == "true") {
            argv.push(format!("--{key}"));
        }
    } else {
        argv.extend(values.iter().map(|v| format!("--{key}={v}")));
    }
    match probe.try_get_matches_from_mut(argv) {
        Ok(_) => Ok(()),
        // The probe gives only this one flag: a command's required
        // positional (`serve DIR`) is missing by construction.
        Err(err) if err.kind() == clap::error::ErrorKind::MissingRequiredArgument => Ok(()),
        Err(err) => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").to_string())
        }
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, GetArgs};

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    /// `haul get ARGS` with `text` as the config file.
    fn get_with(text: &str, args: &[&str]) -> Result<GetArgs, ArgsError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        let path = path.display().to_string();
        let argv = ["haul", "get", "--config", &path, "http://h/f"]
            .into_iter()
            .chain(args.iter().copied());
        match parse_args(argv, env(&[]))?.command {
            Command::Get(get) => Ok(get),
            other => panic!("not a get: {other:?}"),
        }
    }

    fn file_error(text: &str) -> String {
        match get_with(text, &[]) {
            Err(ArgsError::File(err)) => {
                let msg = err.to_string();
                // Callers see the path first; the tests compare the rest.
                msg.split_once("config.toml:")
                    .map_or(msg.clone(), |(_, rest)| rest.to_string())
            }
            Err(ArgsError::Clap(err)) => panic!("clap error: {err}"),
            Ok(args) => panic!("accepted: {args:?}"),
        }
    }

    #[test]
    fn a_zero_time_limit_in_the_file_is_refused_like_on_the_command_line() {
        let msg = file_error("[get]\nstall-timeout = 0\n");
        assert!(
            msg.starts_with("2:") && msg.contains("stall-timeout"),
            "{msg}"
        );
        let msg = file_error("[get]\njobs = 2\nlowest-speed-time = 0.0\n");
        assert!(msg.starts_with("3:") && msg.contains("above 0"), "{msg}");
    }

    #[test]
    fn locates_the_file_like_xdg_says() {
        let none: &[(&str, &str)] = &[];
        assert_eq!(
            locate(None, false, env(&[("HOME", "/h")])),
            ConfigLocation::Optional("/h/.config/haul/config.toml".into())
        );
        assert_eq!(
            locate(
                None,
                false,
                env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")])
            ),
            ConfigLocation::Optional("/x/haul/config.toml".into())
        );
        // Relative and empty XDG values are ignored, as the spec asks.
        for xdg in ["rel", ""] {
            assert_eq!(
                locate(
                    None,
                    false,
                    env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", xdg)])
                ),
                ConfigLocation::Optional("/h/.config/haul/config.toml".into())
            );
        }
        assert_eq!(locate(None, false, env(none)), ConfigLocation::None);
        assert_eq!(
            locate(None, false, env(&[("HOME", "/h"), (CONFIG_ENV, "/e.toml")])),
            ConfigLocation::Required("/e.toml".into())
        );
        assert_eq!(
            locate(Some(Path::new("c.toml")), false, env(&[(CONFIG_ENV, "/e")])),
            ConfigLocation::Required("c.toml".into())
        );
        assert_eq!(
            locate(Some(Path::new("c.toml")), true, env(&[("HOME", "/h")])),
            ConfigLocation::None
        );
    }

    #[test]
    fn file_values_become_defaults_that_flags_override() {
        let text = "[get]\njobs = 16\nmax-per-host = 8\nsplit = 2\nmin-split-size = \"1M\"\n\
                    header = [\"X-A: b\", \"X-C: d\"]\nuser-agent = \"ua/1\"\n\
                    retry-wait = 0.5\nallow-overwrite = true\nquiet = false\n";
        let args = get_with(text, &[]).expect("parse");
        assert_eq!(args.jobs, 16);
        assert_eq!(args.max_per_host, Some(8));
        assert_eq!(args.split, Some(2));
        assert_eq!(args.min_split_size, 1 << 20);
        assert_eq!(args.headers, ["X-A: b", "X-C: d"]);
        assert_eq!(args.user_agent.as_deref(), Some("ua/1"));
        assert_eq!(args.retry_wait, 0.5);
        assert!(args.allow_overwrite);
        assert!(!args.quiet);
        // Untouched keys keep the built-in defaults.
        assert_eq!(args.max_tries, 5);

        let args = get_with(text, &["-j", "3", "--header", "X-E: f", "--split=1"]).expect("parse");
        assert_eq!(args.jobs, 3);
        assert_eq!(args.headers, ["X-E: f"], "flags replace the file's list");
        assert_eq!(args.split, Some(1));
        assert_eq!(args.max_per_host, Some(8));
    }

    #[test]
    fn accepts_hex_integers_and_numbers_as_strings() {
        let args = get_with("[get]\njobs = 0x10\nmax-tries = \"7\"\n", &[]).expect("parse");
        assert_eq!((args.jobs, args.max_tries), (16, 7));
    }

    #[test]
    fn rejects_unknown_keys_and_sections_naming_file_line_and_key() {
        assert_eq!(
            file_error("[get]\njobs = 2\n\nmax-per-hots = 3\n"),
            "4: unknown key 'max-per-hots' in [get] (keys are the long flag names of haul get)"
        );
        let msg = file_error("# c\n[gte]\njobs = 2\n");
        assert!(msg.starts_with("2: unknown section [gte]"), "{msg}");
        assert!(msg.contains("get, verify"), "{msg}");
        assert!(file_error("[completions]\nshell = \"bash\"\n").contains("unknown section"));
        assert_eq!(
            file_error("jobs = 4\n"),
            "1: 'jobs' must sit in a command's section, e.g. [get]"
        );
        assert!(file_error("[get]\nhelp = true\n").starts_with("2: unknown key 'help'"));
        assert!(file_error("[get]\nout = \"f.bin\"\n").starts_with("2: unknown key 'out'"));
    }

    #[test]
    fn an_alias_is_not_a_key_and_the_error_names_the_flag() {
        assert_eq!(
            file_error("[get]\ntries = 3\n"),
            "2: 'tries' in [get] is an alias: write 'max-tries' \
             (keys are the long flag names of haul get)"
        );
        for (alias, name) in [
            ("max-connection-per-server", "max-per-host"),
            ("max-concurrent-downloads", "jobs"),
            ("directory-prefix", "dir"),
            ("lowest-speed-limit", "lowest-speed"),
        ] {
            let msg = file_error(&format!("[get]\n{alias} = 1\n"));
            assert!(msg.contains(&format!("write '{name}'")), "{msg}");
        }
        // Resuming is always on; aria2 users' `continue = true` is harmless.
        assert!(get_with("[get]\ncontinue = true\n", &[]).is_ok());
    }

    #[test]
    fn rejects_wrong_types_and_bad_values_naming_file_line_and_key() {
        assert_eq!(
            file_error("[get]\nquiet = \"yes\"\n"),
            "2: 'quiet' in [get] must be true or false"
        );
        assert_eq!(
            file_error("[get]\n\njobs = [1, 2]\n"),
            "3: 'jobs' in [get] takes one value, not a list"
        );
        assert_eq!(
            file_error("[get]\njobs = true\n"),
            "2: 'jobs' in [get] takes a value, not true or false"
        );
        assert_eq!(
            file_error("[get]\nheader = [{ a = 1 }]\n"),
            "2: 'header' in [get] must be a list of strings"
        );
        let msg = file_error("[get]\njobs = \"many\"\n");
        assert!(
            msg.starts_with("2: 'jobs' in [get]: invalid value 'many'"),
            "{msg}"
        );
        let msg = file_error("[get]\nmin-split-size = \"huge\"\n");
        assert!(msg.contains("'huge' is not a size"), "{msg}");
    }

    #[test]
    fn a_url_as_the_command_gets_a_tip_naming_haul_get() {
        let Err(ArgsError::Clap(err)) = parse_args(["haul", "https://h/f.iso"], env(&[])) else {
            panic!("a URL is not a command");
        };
        let text = err.to_string();
        assert!(text.contains("run 'haul get https://h/f.iso'"), "{text}");
        let Err(ArgsError::Clap(err)) = parse_args(["haul", "fetch"], env(&[])) else {
            panic!("fetch is not a command");
        };
        assert!(!err.to_string().contains("haul get"), "{err}");
    }

    #[test]
    fn reports_toml_syntax_errors_with_their_line() {
        let msg = file_error("[get]\njobs = 2\nsplit = = 3\n");
        assert!(msg.starts_with("3: "), "{msg}");
        let msg = file_error("[get]\njobs = 2\njobs = 3\n");
        assert!(msg.starts_with("3: "), "{msg}");
    }

    #[test]
    fn other_commands_have_their_own_sections() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        let text = "[verify]\nquiet = true\n[get]\njobs = 2\n[serve]\nport = 9000\n";
        std::fs::write(&path, text).expect("write");
        let vars = [(CONFIG_ENV, path.to_str().expect("utf-8 temp path"))];
        let cli = parse_args(["haul", "verify"], env(&vars)).expect("parse");
        match cli.command {
            Command::Verify(v) => assert!(v.quiet),
            other => panic!("{other:?}"),
        }
        // A command with a required positional takes defaults too.
        match parse_args(["haul", "serve", "www"], env(&vars))
            .expect("parse")
            .command
        {
            Command::Serve(s) => assert_eq!(s.port, 9000),
            other => panic!("{other:?}"),
        }
        let text = "[serve]\nport = \"high\"\n";
        std::fs::write(&path, text).expect("write");
        let err = parse_args(["haul", "serve", "www"], env(&vars));
        assert!(matches!(err, Err(ArgsError::File(_))), "{err:?}");
    }

    #[test]
    fn no_config_ignores_even_a_broken_file_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[[[").expect("write");
        let vars = [(CONFIG_ENV, broken.to_str().expect("utf-8 temp path"))];
        let parsed = parse_args(["haul", "get", "--no-config", "http://h/f"], env(&vars));
        assert!(parsed.is_ok(), "{parsed:?}");
        let parsed = parse_args(["haul", "get", "http://h/f"], env(&vars));
        assert!(matches!(parsed, Err(ArgsError::File(_))), "{parsed:?}");

        let missing = dir.path().join("missing.toml");
        let missing = missing.to_str().expect("utf-8 temp path");
        let parsed = parse_args(["haul", "get", "--config", missing, "u"], env(&[]));
        assert!(
            matches!(parsed, Err(ArgsError::File(ConfigFileError::Read { .. }))),
            "{parsed:?}"
        );
        // The XDG default may be absent.
        let home = [("HOME", dir.path().to_str().expect("utf-8 temp path"))];
        assert!(parse_args(["haul", "get", "u"], env(&home)).is_ok());
    }
}
