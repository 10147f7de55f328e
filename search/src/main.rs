//! `edgenas`: train, evaluate and cost ENAS recurrent cells for word-level language models.
//!
//! Results go to stdout, logs and progress to stderr. Exit codes: 0 success, 1 a failed run
//! (bad input or a failed step, named in the message), 2 invalid command-line usage, 3 a
//! budget not met under `edgenas cost --strict`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(1)
        }
    }
}

/// Joins an error and its causes with ": ", skipping a cause whose text the message already
/// contains (most library errors here repeat their source in their own message).
fn error_chain(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
