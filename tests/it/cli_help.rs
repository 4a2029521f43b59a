//! `--help` grouped under headings and wrapped to
//! `COLUMNS`, `-h` a summary of it; aria2c's and wget's spellings of
//! `haul get`'s options doing what the original does; `haul man`'s EXIT
//! STATUS, LIST FORMAT, FILES and EXAMPLES sections; README's install and
//! quick start and its alias table, checked against the binary.

use std::path::{Path, PathBuf};

use crate::cli_config::with_env;
use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Outcome, Sandbox, FAST_RETRY};
use crate::support::server::{Fault, TestServer};

/// `haul ARGS` with `COLUMNS` set, as a shell in a terminal that wide would.
fn help_at(sb: &Sandbox, columns: &str, args: &[&str]) -> Outcome {
    let out = with_env(sb.haul(args), &[("COLUMNS", Path::new(columns))]).run();
    out.assert_code(0);
    out
}

/// The `Heading:` lines of a help text, each with the lines under it.
fn sections(help: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let is_heading = !line.starts_with(' ') && line.ends_with(':') && !line.contains("  ");
        if is_heading {
            found.push((line.trim_end_matches(':').to_string(), String::new()));
        } else if let Some((_, body)) = found.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    found
}

const GET_HEADINGS: [&str; 9] = [
    "Input",
    "Output",
    "Connections",
    "Retries and timeouts",
    "Verification",
    "Network and TLS",
    "Output format",
    "Hooks",
    "Configuration",
];

#[test]
fn help_fits_80_columns_when_columns_is_80() {
    let sb = Sandbox::new();
    let commands: [&[&str]; 8] = [
        &[],
        &["get"],
        &["verify"],
        &["status"],
        &["serve"],
        &["demo"],
        &["completions"],
        &["man"],
    ];
    for command in commands {
        for flag in ["-h", "--help"] {
            let args: Vec<&str> = command.iter().copied().chain([flag]).collect();
            let out = help_at(&sb, "80", &args);
            let wide: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| l.chars().count() > 80)
                .collect();
            assert!(
                wide.is_empty(),
                "haul {args:?}: {} lines wider than 80 columns, e.g. {:?}",
                wide.len(),
                wide.first()
            );
        }
    }
    // Wrapping follows COLUMNS, not a fixed width.
    let narrow = help_at(&sb, "60", &["get", "--help"]);
    let widest = narrow.stdout.lines().map(|l| l.chars().count()).max();
    assert!(widest.is_some_and(|w| w <= 60), "{widest:?}\n{narrow}");
}

#[test]
fn get_help_groups_options_under_headings() {
    let sb = Sandbox::new();
    let out = help_at(&sb, "80", &["get", "--help"]);
    let found = sections(&out.stdout);
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    for heading in GET_HEADINGS {
        assert!(
            names.contains(&heading),
            "no {heading:?} in {names:?}\n{out}"
        );
    }
    let under = |heading: &str| {
        found
            .iter()
            .find(|(name, _)| name == heading)
            .map_or("", |(_, body)| body.as_str())
    };
    let expected = [
        ("Input", "--input-file"),
        ("Input", "--shard"),
        ("Output", "--dir"),
        ("Output", "--out"),
        ("Output", "--allow-overwrite"),
        ("Connections", "--jobs"),
        ("Connections", "--max-per-host"),
        ("Connections", "--split"),
        ("Retries and timeouts", "--max-tries"),
        ("Retries and timeouts", "--stall-timeout"),
        ("Retries and timeouts", "--connect-timeout"),
        ("Verification", "--checksums"),
        ("Verification", "--write-sums"),
        ("Network and TLS", "--ca-cert"),
        ("Network and TLS", "--netrc-file"),
        ("Output format", "--json"),
        ("Output format", "--quiet"),
        ("Hooks", "--on-complete-timeout"),
        ("Configuration", "--no-config"),
    ];
    for (heading, flag) in expected {
        assert!(
            under(heading).contains(flag),
            "{flag} is not under {heading}:\n{out}"
        );
    }
}

#[test]
fn get_short_help_keeps_the_common_options_and_points_to_long_help() {
    let sb = Sandbox::new();
    let short = help_at(&sb, "80", &["get", "-h"]);
    let long = help_at(&sb, "80", &["get", "--help"]);
    let (short_lines, long_lines) = (short.stdout.lines().count(), long.stdout.lines().count());
    assert!(
        short_lines * 2 < long_lines,
        "-h has {short_lines} lines, --help {long_lines}\n{short}"
    );
    for common in [
        "--input-file",
        "--dir",
        "--out",
        "--jobs",
        "--max-per-host",
        "--split",
        "--max-tries",
        "--checksums",
        "--quiet",
    ] {
        assert!(short.stdout.contains(common), "-h lacks {common}\n{short}");
    }
    for rare in [
        "--retry-wait",
        "--max-retry-wait",
        "--connect-timeout",
        "--ca-cert",
        "--netrc-file",
        "--on-complete-timeout",
        "--no-config",
    ] {
        assert!(!short.stdout.contains(rare), "-h shows {rare}\n{short}");
        assert!(long.stdout.contains(rare), "--help lacks {rare}\n{long}");
    }
    assert!(short.stdout.contains("'--help'"), "{short}");
    let short_headings = sections(&short.stdout);
    assert!(
        short_headings.iter().any(|(name, _)| name == "Connections"),
        "{short}"
    );
}

fn get_args(server: &TestServer, sb: &Sandbox, paths: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["get".to_string()];
    args.extend(paths.iter().map(|p| server.url(p)));
    args.extend(["-d".to_string(), sb.dir_arg()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn dash_o_and_out_name_the_one_urls_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(900, 10_000));
    server.add_file("/g.bin", body(901, 10_000));

    let out = sb
        .haul(get_args(&server, &sb, &["/f.bin"], &["-o", "name.bin"]))
        .run();
    out.assert_code(0);
    let out = sb
        .haul(get_args(
            &server,
            &sb,
            &["/g.bin"],
            &["--out", "sub/other.bin"],
        ))
        .run();
    out.assert_code(0);

    assert_file_eq(&sb.dl("name.bin"), &body(900, 10_000));
    assert_file_eq(&sb.dl("sub/other.bin"), &body(901, 10_000));
    assert_eq!(
        sb.downloads(),
        [PathBuf::from("name.bin"), PathBuf::from("sub/other.bin")]
    );
}

#[test]
fn dash_o_is_refused_with_several_urls_a_list_or_an_unsafe_name() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/f.bin", body(902, 1000));
    server.add_file("/g.bin", body(903, 1000));
    sb.write("list.txt", format!("{}\n", server.url("/g.bin")));

    let two = get_args(&server, &sb, &["/f.bin", "/g.bin"], &["-o", "x.bin"]);
    let out = sb.haul(two).run();
    out.assert_code(2).assert_stderr_has(&["-o", "2 URLs"]);

    let list = get_args(
        &server,
        &sb,
        &["/f.bin"],
        &["-o", "x.bin", "-i", "list.txt"],
    );
    let out = sb.haul(list).run();
    out.assert_code(2)
        .assert_stderr_has(&["--out", "cannot be used with", "--input-file"]);

    // The same checks as a list's out=: nothing outside -d.
    for (name, problem) in [
        ("../x.bin", "'..'"),
        ("/tmp/x.bin", "absolute"),
        ("dir/", "file name"),
    ] {
        let out = sb
            .haul(get_args(&server, &sb, &["/f.bin"], &["-o", name]))
            .run();
        out.assert_code(2).assert_stderr_has(&["-o/--out", problem]);
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(sb.downloads().is_empty(), "{:?}", sb.downloads());
    assert!(!sb.root().join("x.bin").exists());
}

/// Six files of 512 KiB at 512 KiB/s a connection: about a second each, so
/// whatever the limit lets run at once does overlap.
fn paced_files(server: &TestServer, seed: u64) -> Vec<String> {
    (0..6)
        .map(|i| {
            let path = format!("/p{i}.bin");
            server.add_file(&path, body(seed + i, 512 << 10));
            server.set_rate(&path, 512 << 10);
            path
        })
        .collect()
}

#[test]
fn x_and_max_connection_per_server_set_the_per_host_limit() {
    for (spelling, limit) in [("-x", 6), ("--max-connection-per-server", 1)] {
        let server = TestServer::start();
        let sb = Sandbox::new();
        let paths = paced_files(&server, 910);
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let limit_arg = limit.to_string();
        let extra = ["-j", "8", spelling, &limit_arg];

        let out = sb.haul(get_args(&server, &sb, &paths, &extra)).run();

        out.assert_code(0);
        for (i, path) in paths.iter().enumerate() {
            let name = path.trim_start_matches('/');
            assert_file_eq(&sb.dl(name), &body(910 + i as u64, 512 << 10));
        }
        let seen = server.max_in_flight("127.0.0.1");
        if limit == 1 {
            assert_eq!(seen, 1, "{spelling} {limit}");
        } else {
            // Above the default of 4: the spelling took effect.
            assert!((5..=limit).contains(&seen), "{spelling} {limit}: {seen}");
        }
    }
}

#[test]
fn max_concurrent_downloads_is_jobs() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let paths = paced_files(&server, 920);
    let paths: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();

    let out = sb
        .haul(get_args(
            &server,
            &sb,
            &paths,
            &["--max-concurrent-downloads", "1"],
        ))
        .run();

    out.assert_code(0);
    assert_eq!(sb.downloads().len(), 3, "{out}");
    assert_eq!(server.max_in_flight_total(), 1);
}

#[test]
fn k_sets_the_size_from_which_files_are_split() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 4 << 20;
    server.add_file("/s.bin", body(930, size));
    // Paced, so the other connections join before the first one ends.
    server.set_rate("/s.bin", 2 << 20);

    // 4 MiB is below the default --min-split-size of 16M.
    let out = sb
        .haul(get_args(&server, &sb, &["/s.bin"], &["-k", "1M"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("s.bin"), &body(930, size));
    let ranged = server
        .gets("/s.bin")
        .iter()
        .filter(|r| r.status == Some(206))
        .count();
    assert!(ranged >= 1, "not split: {:?}", server.gets("/s.bin"));
}

#[test]
fn t_and_tries_set_max_tries() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    for (path, spelling) in [("/a.bin", "-t"), ("/b.bin", "--tries")] {
        server.add_file(path, body(940, 1000));
        // Two failures: the default of 5 tries would get through.
        server.script(path, vec![Fault::Status(503); 2]);
        let mut extra = vec![spelling, "2"];
        extra.extend(FAST_RETRY);

        let out = sb.haul(get_args(&server, &sb, &[path], &extra)).run();

        out.assert_code(1).assert_stderr_has(&["503"]);
        assert_eq!(server.gets(path).len(), 2, "{spelling}");
    }
    assert!(sb.downloads().is_empty(), "{:?}", sb.downloads());
}

#[test]
fn capital_u_sets_the_user_agent() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/u.bin", body(950, 1000));

    let out = sb
        .haul(get_args(&server, &sb, &["/u.bin"], &["-U", "wget-habit/1"]))
        .run();

    out.assert_code(0);
    let req = &server.gets("/u.bin")[0];
    assert_eq!(req.header("user-agent"), Some("wget-habit/1"), "{req:?}");
}

#[test]
fn capital_p_and_directory_prefix_set_the_output_directory() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/p.bin", body(960, 1000));
    server.add_file("/q.bin", body(961, 1000));

    for (path, spelling, dir) in [
        ("/p.bin", "-P", "by-p"),
        ("/q.bin", "--directory-prefix", "by-prefix"),
    ] {
        let out = sb.haul(["get", &server.url(path), spelling, dir]).run();
        out.assert_code(0);
    }

    assert_file_eq(&sb.root().join("by-p/p.bin"), &body(960, 1000));
    assert_file_eq(&sb.root().join("by-prefix/q.bin"), &body(961, 1000));
    assert!(sb.root().join("by-p/.haul/manifest.json").is_file());
}

#[test]
fn c_and_continue_are_accepted_and_resume_is_always_on() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let size = 200_000;
    server.add_file("/c.bin", body(970, size));
    server.script("/c.bin", vec![Fault::CloseAfter(60_000)]);

    // The first run fails mid-body and keeps the .part.
    let first = get_args(&server, &sb, &["/c.bin"], &["-c", "--max-tries", "1"]);
    sb.haul(first).run().assert_code(1);
    assert!(!sb.dl("c.bin").exists());

    let out = sb
        .haul(get_args(&server, &sb, &["/c.bin"], &["--continue"]))
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("c.bin"), &body(970, size));
    let gets = server.gets("/c.bin");
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets[1].range_start().is_some_and(|start| start > 0),
        "the second run did not resume: {:?}",
        gets[1]
    );
}

#[test]
fn config_file_keys_are_long_names_and_an_alias_names_its_key() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(980, 1000));
    let config = sb.write("haul.toml", "[get]\ntries = 3\n");

    let out = sb
        .haul(get_args(&server, &sb, &["/a.bin"], &[]))
        .args([Path::new("--config"), &config])
        .run();

    out.assert_code(2)
        .assert_stderr_has(&["haul.toml:2", "'tries'", "'max-tries'"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// A man page's text with roff's escaped hyphens plain.
fn roff_text(page: &str) -> String {
    page.replace("\\-", "-")
}

/// The codes in README's "Exit codes" table.
fn readme_exit_codes() -> Vec<String> {
    let readme = readme();
    let table = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .filter(|code| code.chars().all(|c| c.is_ascii_digit()) && !code.is_empty())
        .map(str::to_string)
        .collect()
}

fn assert_man_sections(page: &str, what: &str) {
    let page = roff_text(page);
    for heading in [
        ".SH \"EXIT STATUS\"",
        ".SH \"LIST FORMAT\"",
        ".SH FILES",
        ".SH EXAMPLES",
        ".SH ALIASES",
    ] {
        assert!(page.contains(heading), "{what} lacks {heading}");
    }
    let codes = readme_exit_codes();
    assert_eq!(codes, ["0", "1", "2", "130"], "README's exit codes");
    for code in &codes {
        assert!(
            page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "{what}: exit status {code} is not listed"
        );
    }
    let interrupted = page
        .split(".TP\n\\fB130\\fR\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_default();
    assert!(
        interrupted.contains("Ctrl-C"),
        "{what}: 130 is {interrupted:?}"
    );
    for needle in [
        "checksum=sha-256=",
        "out=NAME",
        ".haul/manifest.json",
        ".haul/journal.jsonl",
        ".haul/lock",
        "haul/config.toml",
        "HAUL_CONFIG",
        "haul get -i urls.txt -d out",
        "--max-connection-per-server",
    ] {
        assert!(page.contains(needle), "{what} lacks {needle:?}");
    }
}

#[test]
fn man_has_exit_status_list_format_files_and_examples() {
    let sb = Sandbox::new();
    let out = sb.haul(["man"]).run();
    out.assert_code(0);
    assert_man_sections(&out.stdout, "haul man");
    // An option kept out of -h keeps its text in the page.
    assert!(roff_text(&out.stdout).contains("Read no config file"));

    let pages = sb.root().join("man1");
    sb.haul([Path::new("man"), Path::new("--out"), &pages])
        .run()
        .assert_code(0);
    for name in ["haul.1", "haul-get.1"] {
        let page = std::fs::read_to_string(pages.join(name)).expect("read a page");
        assert_man_sections(&page, name);
    }
    let get = roff_text(&std::fs::read_to_string(pages.join("haul-get.1")).expect("haul-get.1"));
    assert!(get.contains("Base wait between attempts"), "{get}");
    let verify = std::fs::read_to_string(pages.join("haul-verify.1")).expect("haul-verify.1");
    assert!(verify.contains(".SH \"EXIT STATUS\""), "{verify}");
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path).expect("read README.md")
}

#[test]
fn readme_opens_with_install_and_quick_start() {
    let readme = readme();
    let at = |needle: &str| {
        readme
            .find(needle)
            .unwrap_or_else(|| panic!("README lacks {needle:?}"))
    };
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("read Cargo.toml");
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("Cargo.toml sets rust-version")
        .trim_matches('"');

    // Quick start and install come before everything else.
    let first_section = at("\n## ");
    assert!(at("haul get URL") < first_section);
    assert!(at("haul get -i urls.txt -d out") < first_section);
    assert!(at("Ctrl-C") < first_section);
    assert!(at("## Install") < at("## Try it"));
    assert!(at("cargo install --path .") < at("## Try it"));
    assert!(
        readme[..at("## Try it")].contains(&format!("Rust {msrv}")),
        "Install does not name rust-version {msrv}"
    );
    // CI greps these.
    at("cargo run --release -- demo");
    at("cargo test");

    let gitignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore"))
            .expect("read .gitignore");
    assert!(gitignore
        .lines()
        .any(|l| l.trim() == "haul-demo/" || l.trim() == "/haul-demo/"));
}

#[test]
fn readme_alias_table_matches_the_binary() {
    let readme = readme();
    let table = readme
        .split("aria2c and wget spellings")
        .nth(1)
        .expect("README has an aliases paragraph");
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert!(rows.len() >= 8, "{rows:?}");

    let sb = Sandbox::new();
    let help = help_at(&sb, "200", &["get", "--help"]).stdout.clone();
    for row in rows {
        // `| -x N, --max-connection-per-server N | --max-per-host N | ... |`
        for cell in row.split('|').skip(1).take(2) {
            let spellings = cell
                .split(['`', ',', ' '])
                .filter(|word| word.starts_with('-') && word.len() > 1);
            for spelling in spellings {
                let shown = help.contains(&format!("{spelling},"))
                    || help.contains(&format!("{spelling} "))
                    || help.contains(&format!("{spelling}]"))
                    || help.contains(&format!("{spelling}\n"));
                assert!(shown, "README's {spelling} is not in haul get --help");
            }
        }
    }
}
