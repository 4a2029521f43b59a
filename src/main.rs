//! The `haul` binary: parse arguments, run, print the error chain, exit.

#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = haul::cli::Cli::parse();
    match haul::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            ExitCode::from(haul::app::EXIT_USAGE)
        }
    }
}
