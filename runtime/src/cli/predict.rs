//! `edgenas-runtime predict`: the next words after a text.

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

    /// Number of predictions to print
    #[arg(long, default_value_t = 5, value_name = "N")]
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
            tokens.push(step.token);
        }
    }
    if args.json {
        let out = serde_json::json!({ "tokens": tokens, "predictions": session.predictions() });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("tokens: {}", tokens.join(" "));
        println!("next:   {}", format_predictions(session.predictions()));
    }
    Ok(())
}
