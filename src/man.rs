//! The man pages: clap_mangen renders what the command definitions know
//! (synopsis, options under their `--help` headings, subcommands), and this
//! module adds what they do not: EXIT STATUS, LIST FORMAT, FILES and
//! EXAMPLES. Their text follows README ("Exit codes", "The URL list", "How
//! resume works", "Config file"); change both together.
//!
//! It builds roff and writes pages only into the directory it is given; it
//! never prints (`app` does).

use std::io::{self, Write};
use std::path::Path;

use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use crate::config_file::CONFIG_ENV;
use crate::exit::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};

/// haul(1) as roff, for `haul man`.
pub fn render(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut cmd = prepare(cmd);
    cmd.build();
    let mut page = Vec::new();
    render_page(&cmd, &mut page)?;
    Ok(page)
}

/// Writes haul.1 and one haul-COMMAND.1 per command into `dir`, for `haul
/// man --out DIR`.
pub fn write_pages(cmd: clap::Command, dir: &Path) -> io::Result<()> {
    let mut cmd = prepare(cmd);
    cmd.build();
    write_tree(&cmd, dir)
}

/// No `help` subcommand page, and every option with its help text.
fn prepare(cmd: clap::Command) -> clap::Command {
    with_long_help(cmd.disable_help_subcommand(true))
}

/// clap_mangen 0.3 prints an option's long help, else its help unless
/// `hide_short_help` is set: an option kept out of `-h` that has only a
/// one-paragraph doc comment would appear in the page without any text. Its
/// help becomes its long help too, in every command.
fn with_long_help(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| match (arg.get_long_help(), arg.get_help()) {
        (None, Some(help)) if arg.is_hide_short_help_set() => {
            let help = help.clone();
            arg.long_help(help)
        }
        _ => arg,
    })
    .mut_subcommands(with_long_help)
}

fn write_tree(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, dir)?;
    }
    let mut page = Vec::new();
    render_page(cmd, &mut page)?;
    let name = Man::new(cmd.clone()).get_filename();
    let mut file = std::fs::File::create(dir.join(name))?;
    file.write_all(&page)?;
    file.flush()
}

/// clap_mangen's sections in its own order, with ours before VERSION (the
/// order man-pages(7) suggests).
fn render_page(cmd: &clap::Command, w: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    let get = match cmd.get_name() {
        "get" => Some(cmd),
        _ => cmd.find_subcommand("get"),
    };
    extra_sections(cmd.get_display_name().unwrap_or(cmd.get_name()), get).to_writer(w)?;
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// The sections a page gets: all of them on haul(1) and haul-get(1) (`get`
/// is that command, for its aliases), exit status and files on the other
/// commands that read a download directory.
fn extra_sections(page: &str, get: Option<&clap::Command>) -> Roff {
    let mut roff = Roff::new();
    let all = matches!(page, "haul" | "haul-get");
    if all || matches!(page, "haul-verify" | "haul-status") {
        exit_status(&mut roff);
    }
    if all {
        list_format(&mut roff);
        if let Some(get) = get {
            aliases(&mut roff, get);
        }
    }
    if all || matches!(page, "haul-verify" | "haul-status") {
        files(&mut roff);
    }
    if all {
        examples(&mut roff);
    }
    roff
}

/// A `.TP` item: a bold tag, then its paragraph.
fn item(roff: &mut Roff, tag: impl Into<Vec<Inline>>, text: impl Into<Vec<Inline>>) {
    roff.control("TP", []).text(tag).text(text);
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    let codes = [
        (
            EXIT_OK,
            "Every file downloaded (or already complete) and verified.",
        ),
        (
            EXIT_FAILED,
            "Some downloads failed (the others completed); for verify, some files \
             mismatched or are missing; for status, not everything the list names \
             is done yet (failed, unfinished, in no manifest, or a shard that never \
             started).",
        ),
        (
            EXIT_USAGE,
            "Bad usage or bad input: the list, a checksum, an unreadable manifest, \
             the output directory in use by another haul.",
        ),
        (
            EXIT_INTERRUPTED,
            "Interrupted by Ctrl-C or SIGTERM; progress is saved, run the same \
             command again.",
        ),
    ];
    for (code, meaning) in codes {
        item(roff, [bold(code.to_string())], [roman(meaning)]);
    }
}

fn list_format(roff: &mut Roff) {
    roff.control("SH", ["LIST FORMAT"]);
    roff.text([
        roman("The file given to "),
        bold("-i"),
        roman(
            " uses aria2's input-file format: one URL a line, or several separated \
             by TABs (mirrors: the same file at other places). Lines starting with ",
        ),
        bold("#"),
        roman(
            " and blank lines are ignored. Option lines, indented by a space or a \
             tab, belong to the URL above:",
        ),
    ]);
    let options = [
        (
            "out=NAME",
            "The file name, relative to the output directory; it may hold sub-directories.",
        ),
        ("dir=SUBDIR", "A sub-directory of the output directory."),
        (
            "checksum=sha-256=HEX",
            "The file's expected sha256, checked before it gets its name.",
        ),
        (
            "header=Name: value",
            "A request header for this URL only (repeatable).",
        ),
    ];
    for (option, meaning) in options {
        item(roff, [bold(option)], [roman(meaning)]);
    }
    roff.control("PP", []).text([roman(
        "Anything else (an unknown option, a malformed line, a scheme other than \
         http or https, a bad checksum, a path with a .. component or an absolute \
         path) is rejected before anything is downloaded, as FILE:LINE: what is \
         wrong, with exit status 2. The same URL twice is one job; two URLs that \
         would write the same file are an error naming both lines. For example:",
    )]);
    example_block(
        roff,
        &[
            "https://example.org/data/part-001.tar",
            "  out=part1.tar",
            "  dir=archives",
            "  checksum=sha-256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "  header=Authorization: Bearer abc123",
            "# a comment",
            "https://example.org/data/part-002.tar",
        ],
    );
}

/// `haul get`'s other spellings (aria2c's and wget's), from the clap
/// definitions: clap_mangen 0.3 leaves aliases out of OPTIONS.
fn aliases(roff: &mut Roff, get: &clap::Command) {
    roff.control("SH", ["ALIASES"]);
    roff.text([roman(
        "For aria2c and wget users, haul get takes their spellings where they \
         mean the same: the short options -x, -k, -o, -c (aria2c) and -t, -U \
         (wget) under OPTIONS above, and these. -c, --continue changes nothing: \
         haul always resumes.",
    )]);
    for arg in get.get_arguments() {
        let shorts = arg.get_visible_short_aliases().unwrap_or_default();
        let longs = arg.get_visible_aliases().unwrap_or_default();
        let spellings: Vec<String> = shorts
            .iter()
            .map(|c| format!("-{c}"))
            .chain(longs.iter().map(|l| format!("--{l}")))
            .collect();
        let Some(long) = arg.get_long().filter(|_| !spellings.is_empty()) else {
            continue;
        };
        item(
            roff,
            [bold(spellings.join(", "))],
            [roman("Same as "), bold(format!("--{long}")), roman(".")],
        );
    }
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    let state = [
        (
            "DIR/.haul/manifest.json",
            "A snapshot of every download's state: its URL, path, offset, validator \
             and sha256. haul get resumes from it; haul verify and haul status read it.",
        ),
        (
            "DIR/.haul/journal.jsonl",
            "State updates since the snapshot, one JSON record a line, folded into \
             manifest.json as it grows and at the end of a run. A torn last line \
             from a kill is ignored; other damage is an error naming the file.",
        ),
        (
            "DIR/.haul/lock",
            "Held while a haul runs in DIR: a second one exits with status 2.",
        ),
        (
            "DIR/.haul/shard-K-of-N/",
            "The same three files for haul get --shard K/N.",
        ),
        (
            "DIR/NAME.part",
            "A file being downloaded; renamed to NAME once its length and sha256 \
             check out.",
        ),
    ];
    for (path, meaning) in state {
        item(roff, [italic(path)], [roman(meaning)]);
    }
    item(
        roff,
        [italic("$XDG_CONFIG_HOME/haul/config.toml")],
        [roman(format!(
            "The config file (~/.config/haul/config.toml when XDG_CONFIG_HOME is \
             unset, empty or relative): one TOML table per command, keyed by its \
             long flag names, e.g. [get] with jobs = 16. ${CONFIG_ENV} or --config \
             FILE name another file, which must exist; --no-config reads none. \
             haul never writes it."
        ))],
    );
}

fn examples(roff: &mut Roff) {
    roff.control("SH", ["EXAMPLES"]);
    let examples = [
        (
            "haul get https://example.org/data.tar",
            "Download one file into the current directory.",
        ),
        (
            "haul get -i urls.txt -d out",
            "Download every URL of a list into out/. Ctrl-C stops it with progress \
             saved (exit status 130); the same command again resumes every file.",
        ),
        (
            "haul get -x 8 -s 8 -o data.tar https://example.org/d",
            "aria2c spellings: 8 connections to the host, the file split over 8 of \
             them, saved as data.tar.",
        ),
        (
            "haul get -i urls.txt -d out --checksums SHA256SUMS --write-sums out.sha256",
            "Check each file against a sha256sum file while downloading, then write \
             one for everything downloaded.",
        ),
        (
            "haul verify -d out",
            "Re-hash the downloaded files against the manifest.",
        ),
    ];
    for (command, meaning) in examples {
        item(roff, [bold(command)], [roman(meaning)]);
    }
}

/// Lines shown as typed (no filling, no hyphenation).
fn example_block(roff: &mut Roff, lines: &[&str]) {
    roff.control("PP", [])
        .control("RS", ["4"])
        .control("nf", []);
    for line in lines {
        roff.text([roman(*line)]);
    }
    roff.control("fi", []).control("RE", []);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn page() -> String {
        let bytes = render(crate::cli::Cli::command()).expect("render");
        String::from_utf8(bytes).expect("roff is UTF-8")
    }

    #[test]
    fn our_sections_come_after_options_and_before_version() {
        let page = page();
        let at = |heading: &str| {
            page.find(&format!(".SH {heading}"))
                .unwrap_or_else(|| panic!("no {heading}:\n{page}"))
        };
        let order = [
            "NAME",
            "SYNOPSIS",
            "\"EXIT STATUS\"",
            "\"LIST FORMAT\"",
            "ALIASES",
            "FILES",
            "EXAMPLES",
            "VERSION",
        ];
        for pair in order.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{pair:?}\n{page}");
        }
    }

    #[test]
    fn every_exit_code_is_listed() {
        let page = page();
        for code in [EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED] {
            assert!(
                page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{code}\n{page}"
            );
        }
    }
}
