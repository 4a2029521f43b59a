//! The `haul` binary: parse arguments, run, print the error chain, exit.

#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use haul::cli_support::{parse_args_from_env, run, ArgsError, EXIT_USAGE};

fn main() -> ExitCode {
    // The command line, with defaults from the config file (see config_file).
    let result = match parse_args_from_env() {
        Ok(cli) => run(cli),
        Err(ArgsError::Clap(err)) => err.exit(),
        Err(ArgsError::File(err)) => Err(err.into()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}
