//! `edgenas`: train, evaluate and cost ENAS recurrent cells for word-level language models.
//!
//! Results go to stdout, logs and progress to stderr. Exit codes: 0 success, 1 a failed run
//! (bad input or a failed step; the message says which), 2 invalid command-line usage.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
