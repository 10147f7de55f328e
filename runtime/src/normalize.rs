//! Maps spoken or written words to the tokens of a model's vocabulary.
//!
//! The rules follow the Penn Treebank preparation of Mikolov et al. (2010), the corpus the
//! default model learned from, and apply only where the vocabulary has the token they produce:
//!
//! 1. Text is lowercased, and typographic apostrophes (U+2019) become `'`.
//! 2. Punctuation around a word (`.,;:!?"()[]{}` and quotes) is dropped, but a word the
//!    vocabulary has with its period (`mr.`, `u.s.`) keeps it.
//! 3. A number written in digits (`42`, `3.5`, `1,000`, `1990s` is not one) becomes `N`.
//!    A leading `$` becomes the token `$`, and a trailing `%` the word `percent`.
//! 4. Contractions split as in the treebank: `don't` -> `do n't`, `can't` -> `ca n't`,
//!    `won't` -> `wo n't`, `it's` -> `it 's`, and likewise `'re 'm 've 'll 'd`.
//! 5. A hyphenated word the vocabulary lacks splits at its hyphens.
//! 6. Any other word the vocabulary lacks becomes `<unk>`, and a word without a letter or digit
//!    (`--`, `...`) gives no token unless the vocabulary has it (`$`, `&`).

use edgenas_core::Vocab;

/// One model token made from a spoken word.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Token {
    /// The vocabulary token, or the lowercased word when it is unknown.
    pub text: String,
    /// Vocabulary id; `<unk>` for an unknown word.
    pub id: usize,
    /// Whether the word is in the vocabulary.
    pub known: bool,
}

/// Contraction suffixes the treebank splits off, longest first.
const SUFFIXES: [&str; 7] = ["n't", "'s", "'re", "'m", "'ve", "'ll", "'d"];

/// Characters dropped from either end of a word.
fn is_edge_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '"' | '(' | ')' | '[' | ']' | '{' | '}' | '`' | '\''
    ) || c == '\u{201C}'
        || c == '\u{201D}'
        || c == '\u{2018}'
}

/// Text normalization for one vocabulary.
pub struct Normalizer<'v> {
    vocab: &'v Vocab,
}

impl<'v> Normalizer<'v> {
    pub fn new(vocab: &'v Vocab) -> Normalizer<'v> {
        Normalizer { vocab }
    }

    /// Splits `text` at whitespace and returns the tokens of every word, in order.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        for word in text.split_whitespace() {
            self.push_word(word, &mut out);
        }
        out
    }

    /// Appends the tokens of one word to `out`; a word can give none (only punctuation).
    pub fn push_word(&self, word: &str, out: &mut Vec<Token>) {
        let lower = word.to_lowercase().replace('\u{2019}', "'");
        if self.vocab.id(&lower).is_some() {
            out.push(self.known(&lower));
            return;
        }
        let trimmed = self.trim(&lower);
        if !trimmed.chars().any(char::is_alphanumeric) {
            return;
        }
        if self.vocab.id(trimmed).is_some() {
            out.push(self.known(trimmed));
        } else if let Some(parts) = self.number(trimmed) {
            out.extend(parts);
        } else if let Some((stem, suffix)) = self.contraction(trimmed) {
            if !stem.is_empty() {
                self.push_word(stem, out);
            }
            out.push(self.known(suffix));
        } else if trimmed.contains('-') && trimmed.split('-').any(|p| !p.is_empty()) {
            for part in trimmed.split('-').filter(|p| !p.is_empty()) {
                self.push_word(part, out);
            }
        } else {
            out.push(self.unknown(trimmed));
        }
    }

    /// Drops edge punctuation, keeping a final period where the vocabulary has the word with it.
    fn trim<'a>(&self, word: &'a str) -> &'a str {
        let start = word.trim_start_matches(is_edge_punctuation);
        let end = start.trim_end_matches(is_edge_punctuation);
        if let Some(with_period) = start.get(..end.len() + 1) {
            if with_period.ends_with('.') && self.vocab.id(with_period).is_some() {
                return with_period;
            }
        }
        end
    }

    /// Returns the tokens of a number in digits (`$` and `percent` around `N`), or `None`.
    fn number(&self, word: &str) -> Option<Vec<Token>> {
        let n = self.vocab.id("N")?;
        let (dollar, rest) = match word.strip_prefix('$') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        let (digits, percent) = match rest.strip_suffix('%') {
            Some(digits) => (digits, true),
            None => (rest, false),
        };
        let is_number = digits.chars().next().is_some_and(|c| c.is_ascii_digit())
            && digits.chars().last().is_some_and(|c| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.');
        if !is_number {
            return None;
        }
        let mut tokens = Vec::new();
        if dollar {
            tokens.push(self.lookup("$"));
        }
        tokens.push(Token {
            text: "N".to_string(),
            id: n,
            known: true,
        });
        if percent {
            tokens.push(self.lookup("percent"));
        }
        Some(tokens)
    }

    /// Splits a contraction into stem and treebank suffix when the vocabulary has the suffix.
    fn contraction<'a>(&self, word: &'a str) -> Option<(&'a str, &'static str)> {
        let suffix = SUFFIXES
            .into_iter()
            .find(|s| word.len() > s.len() && word.ends_with(s) && self.vocab.id(s).is_some())?;
        // `can't` and `won't` give the treebank stems `ca` and `wo` without a special case.
        Some((&word[..word.len() - suffix.len()], suffix))
    }

    fn lookup(&self, word: &str) -> Token {
        match self.vocab.id(word) {
            Some(_) => self.known(word),
            None => self.unknown(word),
        }
    }

    fn known(&self, token: &str) -> Token {
        Token {
            text: token.to_string(),
            id: self.vocab.id(token).expect("caller checked the token is in the vocabulary"),
            known: true,
        }
    }

    fn unknown(&self, word: &str) -> Token {
        Token {
            text: word.to_string(),
            id: self.vocab.unk_id(),
            known: false,
        }
    }
}
