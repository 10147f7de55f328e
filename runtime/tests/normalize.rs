//! Text normalisation to the Penn Treebank vocabulary of the default model, one row per rule.

use std::path::Path;

use edgenas_core::Vocab;
use edgenas_runtime::normalize::Normalizer;

fn ptb_vocab() -> Vocab {
    Vocab::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/ptb-small/vocab.txt"))
        .unwrap()
}

/// Input word, expected tokens (`<unk>` marks an unknown word), and the rule it exercises.
const CASES: [(&str, &str, &str); 20] = [
    ("The", "the", "lowercase"),
    ("stocks,", "stocks", "trailing comma"),
    ("\"Sales!\"", "sales", "quotes and exclamation mark"),
    ("(market)", "market", "brackets"),
    ("Mr.", "mr.", "abbreviation the vocabulary keeps with its period"),
    ("U.S.", "u.s.", "abbreviation with inner periods"),
    ("end.", "end", "sentence period"),
    ("42", "N", "integer"),
    ("1,000.5", "N", "number with separators"),
    ("$5", "$ N", "dollar amount"),
    ("12%", "N percent", "percentage"),
    ("1990s", "1990s", "decade in the vocabulary"),
    ("don't", "do n't", "n't contraction"),
    ("can't", "ca n't", "treebank stem of can't"),
    ("won\u{2019}t", "wo n't", "typographic apostrophe"),
    ("it's", "it 's", "'s contraction"),
    ("we're", "we 're", "'re contraction"),
    ("30-year", "30-year", "hyphenated word in the vocabulary"),
    ("state-owned-chicken", "state owned chicken", "hyphenated word split"),
    ("zyzzyva", "<unk>", "unknown word"),
];

#[test]
fn rules_table() {
    let vocab = ptb_vocab();
    let normalizer = Normalizer::new(&vocab);
    for (word, expected, rule) in CASES {
        let tokens = normalizer.tokens(word);
        let got: Vec<String> = tokens
            .iter()
            .map(|t| if t.known { t.text.clone() } else { "<unk>".to_string() })
            .collect();
        assert_eq!(got.join(" "), expected, "{rule}: {word:?}");
        for token in &tokens {
            let expected_id = if token.known { vocab.id(&token.text).unwrap() } else { vocab.unk_id() };
            assert_eq!(token.id, expected_id, "{rule}: id of {:?}", token.text);
        }
    }
}

#[test]
fn punctuation_alone_gives_no_token() {
    let vocab = ptb_vocab();
    let normalizer = Normalizer::new(&vocab);
    for word in ["...", "--", "\"", "?!", "-"] {
        let tokens = normalizer.tokens(word);
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert!(texts.is_empty(), "{word:?} gave {texts:?}");
    }
}

#[test]
fn sentence_in_order() {
    let vocab = ptb_vocab();
    let normalizer = Normalizer::new(&vocab);
    let tokens = normalizer.tokens("It's easy to tell the size of a well.");
    let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, ["it", "'s", "easy", "to", "tell", "the", "size", "of", "a", "well"]);
    assert!(tokens.iter().all(|t| t.known));
}

#[test]
fn unknown_word_keeps_spelling() {
    let vocab = ptb_vocab();
    let normalizer = Normalizer::new(&vocab);
    let tokens = normalizer.tokens("Birch");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].text, "birch");
    assert!(!tokens[0].known);
    assert_eq!(tokens[0].id, vocab.unk_id());
}
