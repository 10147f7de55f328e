//! The vocabulary file `vocab.txt`: one token a line, the line number (from 0) is the id.

use std::collections::HashMap;
use std::path::Path;

/// Token for words outside the vocabulary.
pub const UNK: &str = "<unk>";
/// Token that ends every sentence.
pub const EOS: &str = "<eos>";

/// A bijection between tokens and ids. Always contains `<unk>` and `<eos>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    ids: HashMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("cannot read vocabulary {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write vocabulary {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: empty token; every line of a vocabulary holds one token")]
    EmptyToken { path: String, line: usize },
    #[error("{path}:{line}: token {token:?} contains whitespace; tokens are split on whitespace")]
    Whitespace {
        path: String,
        line: usize,
        token: String,
    },
    #[error("{path}:{line}: token {token:?} already appears on line {first}")]
    Duplicate {
        path: String,
        line: usize,
        first: usize,
        token: String,
    },
    #[error("vocabulary {path} lacks {token:?}; every vocabulary needs <unk> and <eos>")]
    MissingSpecial { path: String, token: &'static str },
}

impl Vocab {
    /// Builds a vocabulary from tokens in id order. Fails on a duplicate, an empty token or a
    /// missing `<unk>`/`<eos>`; `source` names the origin in errors.
    pub fn from_tokens(tokens: Vec<String>, source: &str) -> Result<Vocab, VocabError> {
        let mut ids = HashMap::with_capacity(tokens.len());
        for (id, token) in tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(VocabError::EmptyToken {
                    path: source.to_string(),
                    line: id + 1,
                });
            }
            if token.chars().any(char::is_whitespace) {
                return Err(VocabError::Whitespace {
                    path: source.to_string(),
                    line: id + 1,
                    token: token.clone(),
                });
            }
            if let Some(first) = ids.insert(token.clone(), id) {
                return Err(VocabError::Duplicate {
                    path: source.to_string(),
                    line: id + 1,
                    first: first + 1,
                    token: token.clone(),
                });
            }
        }
        for special in [UNK, EOS] {
            if !ids.contains_key(special) {
                return Err(VocabError::MissingSpecial {
                    path: source.to_string(),
                    token: special,
                });
            }
        }
        Ok(Vocab { tokens, ids })
    }

    /// Reads `vocab.txt`.
    pub fn load(path: &Path) -> Result<Vocab, VocabError> {
        let display_path = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| VocabError::Read {
            path: display_path.clone(),
            source,
        })?;
        let tokens = text.lines().map(str::to_string).collect();
        Vocab::from_tokens(tokens, &display_path)
    }

    /// Writes `vocab.txt` atomically.
    pub fn save(&self, path: &Path) -> Result<(), VocabError> {
        let mut text = self.tokens.join("\n");
        text.push('\n');
        crate::write_atomic(path, text.as_bytes()).map_err(|source| VocabError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn id(&self, token: &str) -> Option<usize> {
        self.ids.get(token).copied()
    }

    /// Id of `token`, or of `<unk>` when the token is not in the vocabulary.
    pub fn id_or_unk(&self, token: &str) -> usize {
        self.id(token).unwrap_or_else(|| self.unk_id())
    }

    pub fn unk_id(&self) -> usize {
        self.ids[UNK]
    }

    pub fn eos_id(&self) -> usize {
        self.ids[EOS]
    }

    pub fn token(&self, id: usize) -> Option<&str> {
        self.tokens.get(id).map(String::as_str)
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
}
