//! Reads a Penn-Treebank-style corpus directory into token ids.
//!
//! Each split is a text file with one sentence per line. Tokens are separated by whitespace,
//! and `<eos>` is appended after the last token of every line. Lines that contain only
//! whitespace are skipped, so a trailing newline or a blank line adds no `<eos>`.
//!
//! The vocabulary comes from the training split only. Words of any other split that the
//! vocabulary lacks map to `<unk>`, and each split records how many tokens were mapped that way.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use edgenas_core::vocab::{EOS, UNK};
use edgenas_core::Vocab;

/// Maximum number of distinct unknown words quoted in the per-split warning.
const UNKNOWN_EXAMPLES: usize = 5;

/// One of the three corpus splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// Lowercase split name: `train`, `valid` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }

    /// Accepted file names: the plain style (`train.txt`) first, then the style of Mikolov's
    /// Penn Treebank release (`ptb.train.txt`).
    pub fn file_names(self) -> [&'static str; 2] {
        match self {
            Split::Train => ["train.txt", "ptb.train.txt"],
            Split::Valid => ["valid.txt", "ptb.valid.txt"],
            Split::Test => ["test.txt", "ptb.test.txt"],
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error(
        "corpus directory {} not found or not a directory; pass the directory that contains \
         the train, valid and test splits",
        path.display()
    )]
    DirectoryNotFound { path: PathBuf },

    #[error(
        "{split} split missing in {}: expected {} or {}; add one of these files",
        dir.display(), split.file_names()[0], split.file_names()[1]
    )]
    MissingSplit { dir: PathBuf, split: Split },

    #[error(
        "{split} split found twice, as {} and {}; remove or rename one of them",
        plain.display(), ptb.display()
    )]
    AmbiguousSplit {
        split: Split,
        plain: PathBuf,
        ptb: PathBuf,
    },

    #[error(
        "{}: split contains no tokens; every split needs at least one non-blank line",
        path.display()
    )]
    EmptySplit { path: PathBuf },

    #[error(
        "{}:{line}: invalid UTF-8 at byte {byte} of the line; re-encode the file as UTF-8",
        path.display()
    )]
    InvalidUtf8 {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 0-based byte offset of the first invalid byte within the line.
        byte: usize,
    },

    #[error(
        "{}: the training split has {size} distinct tokens (with <unk> and <eos>), over the \
         vocabulary limit of {max}; raise the limit, or map rare words to <unk> beforehand as \
         Mikolov's Penn Treebank release does",
        path.display()
    )]
    VocabTooLarge { path: PathBuf, size: usize, max: usize },

    #[error("failed to read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Token ids of one split, with where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIds {
    pub path: PathBuf,
    /// Token ids in file order, `<eos>` included.
    pub ids: Vec<i64>,
    /// Number of tokens mapped to `<unk>` because the vocabulary lacks them. A literal
    /// `<unk>` in the text is a vocabulary token and is not counted.
    pub unknown_tokens: usize,
}

/// A vocabulary and the three splits mapped through it.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub vocab: Vocab,
    pub train: SplitIds,
    pub valid: SplitIds,
    pub test: SplitIds,
}

impl Corpus {
    /// Reads the splits in `dir` and builds the vocabulary from the training split.
    ///
    /// The vocabulary is ordered by descending count, ties broken by the byte order of the
    /// token. `<unk>` and `<eos>` are added with count zero when the training text lacks them.
    /// `max_vocab` limits the vocabulary size, `<unk>` and `<eos>` included. Exceeding it is an
    /// error, because silently mapping words to `<unk>` would change the task.
    pub fn load(dir: &Path, max_vocab: Option<usize>) -> Result<Corpus, CorpusError> {
        let [train_path, valid_path, test_path] = find_splits(dir)?;

        // The block frees the training text and its token slices before the next split is read.
        let (vocab, train) = {
            let bytes = read_bytes(&train_path)?;
            let tokens = tokenize(&train_path, &bytes)?;
            let vocab = build_vocab(&train_path, &tokens, max_vocab)?;
            let train = map_tokens(train_path, &tokens, &vocab, Split::Train.name());
            (vocab, train)
        };

        let valid = read_mapped(valid_path, &vocab, Split::Valid)?;
        let test = read_mapped(test_path, &vocab, Split::Test)?;
        Ok(Corpus {
            vocab,
            train,
            valid,
            test,
        })
    }

    /// Reads the splits in `dir` and maps all three through `vocab`, for example the
    /// `vocab.txt` of a checkpoint. Words missing from `vocab` map to `<unk>`, in the
    /// training split too.
    pub fn load_with_vocab(dir: &Path, vocab: Vocab) -> Result<Corpus, CorpusError> {
        let [train_path, valid_path, test_path] = find_splits(dir)?;
        let train = read_mapped(train_path, &vocab, Split::Train)?;
        let valid = read_mapped(valid_path, &vocab, Split::Valid)?;
        let test = read_mapped(test_path, &vocab, Split::Test)?;
        Ok(Corpus {
            vocab,
            train,
            valid,
            test,
        })
    }

    pub fn split(&self, split: Split) -> &SplitIds {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }
}

/// Reads one split file and maps its tokens through `vocab`. Words missing from `vocab` map
/// to `<unk>`.
pub fn read_split(path: &Path, vocab: &Vocab) -> Result<SplitIds, CorpusError> {
    let label = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    read_split_labelled(path.to_path_buf(), vocab, &label)
}

/// Finds the file of `split` in `dir`, accepting either naming style but not both.
pub fn find_split(dir: &Path, split: Split) -> Result<PathBuf, CorpusError> {
    let [plain_name, ptb_name] = split.file_names();
    let plain = dir.join(plain_name);
    let ptb = dir.join(ptb_name);
    let plain_exists = path_exists(&plain)?;
    let ptb_exists = path_exists(&ptb)?;
    match (plain_exists, ptb_exists) {
        (true, true) => Err(CorpusError::AmbiguousSplit { split, plain, ptb }),
        (true, false) => Ok(plain),
        (false, true) => Ok(ptb),
        (false, false) => Err(CorpusError::MissingSplit {
            dir: dir.to_path_buf(),
            split,
        }),
    }
}

fn find_splits(dir: &Path) -> Result<[PathBuf; 3], CorpusError> {
    if !dir.is_dir() {
        return Err(CorpusError::DirectoryNotFound {
            path: dir.to_path_buf(),
        });
    }
    Ok([
        find_split(dir, Split::Train)?,
        find_split(dir, Split::Valid)?,
        find_split(dir, Split::Test)?,
    ])
}

fn path_exists(path: &Path) -> Result<bool, CorpusError> {
    path.try_exists().map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, CorpusError> {
    std::fs::read(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_mapped(path: PathBuf, vocab: &Vocab, split: Split) -> Result<SplitIds, CorpusError> {
    read_split_labelled(path, vocab, split.name())
}

fn read_split_labelled(path: PathBuf, vocab: &Vocab, label: &str) -> Result<SplitIds, CorpusError> {
    let bytes = read_bytes(&path)?;
    let tokens = tokenize(&path, &bytes)?;
    Ok(map_tokens(path, &tokens, vocab, label))
}

/// Splits `bytes` into whitespace-separated tokens, with `<eos>` after each non-blank line.
/// Each line is decoded on its own, so an error can name the line that is not UTF-8.
/// Fails with `EmptySplit` when no line contains a token. A UTF-8 byte order mark at the
/// start of the file is skipped, so it never becomes part of the first word.
fn tokenize<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<&'a str>, CorpusError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut tokens = Vec::with_capacity(bytes.len() / 5);
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let text = std::str::from_utf8(line).map_err(|error| CorpusError::InvalidUtf8 {
            path: path.to_path_buf(),
            line: index + 1,
            byte: error.valid_up_to(),
        })?;
        let before = tokens.len();
        tokens.extend(text.split_whitespace());
        if tokens.len() > before {
            tokens.push(EOS);
        }
    }
    if tokens.is_empty() {
        return Err(CorpusError::EmptySplit {
            path: path.to_path_buf(),
        });
    }
    Ok(tokens)
}

fn build_vocab(path: &Path, tokens: &[&str], max_vocab: Option<usize>) -> Result<Vocab, CorpusError> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for &token in tokens {
        *counts.entry(token).or_insert(0) += 1;
    }
    for special in [UNK, EOS] {
        counts.entry(special).or_insert(0);
    }

    if let Some(max) = max_vocab {
        if counts.len() > max {
            return Err(CorpusError::VocabTooLarge {
                path: path.to_path_buf(),
                size: counts.len(),
                max,
            });
        }
    }

    let mut ordered: Vec<(&str, usize)> = counts.into_iter().collect();
    // `str` compares by bytes, so ties in count fall back to the byte order of the token.
    ordered.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let tokens = ordered.into_iter().map(|(token, _)| token.to_string()).collect();

    // The tokens are distinct map keys, and `split_whitespace` and `char::is_whitespace` share
    // the Unicode definition of whitespace. Both special tokens were added above, so
    // `from_tokens` cannot fail here.
    Ok(Vocab::from_tokens(tokens, &path.display().to_string())
        .expect("vocabulary built from whitespace-split tokens is always valid"))
}

/// Maps tokens to ids through `vocab` and warns once if any token was not in it.
fn map_tokens(path: PathBuf, tokens: &[&str], vocab: &Vocab, label: &str) -> SplitIds {
    let unk = vocab.unk_id() as i64;
    let mut ids = Vec::with_capacity(tokens.len());
    let mut unknown_tokens = 0;
    let mut examples: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();

    for &token in tokens {
        match vocab.id(token) {
            Some(id) => ids.push(id as i64),
            None => {
                ids.push(unk);
                unknown_tokens += 1;
                if examples.len() < UNKNOWN_EXAMPLES && seen.insert(token) {
                    examples.push(token);
                }
            }
        }
    }

    if unknown_tokens > 0 {
        tracing::warn!(
            split = %label,
            path = %path.display(),
            unknown_tokens,
            examples = ?examples,
            "words missing from the vocabulary were mapped to <unk>",
        );
    }
    SplitIds {
        path,
        ids,
        unknown_tokens,
    }
}
