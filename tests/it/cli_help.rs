//! Issue 9, point 5: `--help` grouped under headings and wrapped to
//! `COLUMNS`, `-h` a summary of it.

use std::path::Path;

use crate::cli_config::with_env;
use crate::support::cli::{Outcome, Sandbox};

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
