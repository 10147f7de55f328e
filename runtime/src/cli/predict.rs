//! `edgenas-runtime predict`: the next words after a text.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use edgenas_runtime::Session;

use super::{format_predictions, ModelArgs};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Text so far; an empty text gives the likely first words of a sentence
    #[arg(value_name = "TEXT", num_args = 0..)]
    pub text: Vec<String>,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Number of predictions to print, 1 to 100
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = super::parse_top_k)]
    pub top_k: usize,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let predictor = args.model.load()?;
    let mut session = Session::new(&predictor, args.top_k)?;
    session.start_utterance()?;
    let mut tokens = Vec::new();
    for word in args.text.iter().flat_map(|t| t.split_whitespace()) {
        for step in session.push_word(word)? {
            // An unknown word is fed as <unk>, so it is shown with that mark.
            tokens.push(match step.known {
                true => step.token,
                false => format!("{}<unk>", step.token),
            });
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = serde_json::json!({ "tokens": tokens, "predictions": session.predictions() });
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)
    } else {
        writeln!(out, "tokens: {}", tokens.join(" "))
            .and_then(|()| writeln!(out, "next:   {}", format_predictions(session.predictions())))
    }
    .context("failed to write to stdout")
}
