//! Tests for the corpus reader and the BPTT batching.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use edgenas_core::Vocab;
use edgenas_search::batch::{BatchError, Batched};
use edgenas_search::corpus::{find_split, read_split, Corpus, CorpusError, Split};
use tempfile::TempDir;

/// Penn Treebank folder: `EDGENAS_PTB_DIR`, or the data folder beside the repository that CI
/// provides.
fn ptb_dir() -> std::path::PathBuf {
    match std::env::var_os("EDGENAS_PTB_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ptb"),
    }
}

/// Training text with known counts. `<eos>` occurs 3 times, `cat`, `sat` and `the` twice, and
/// `The` and `dog` once. Lines 2 and 4 contain only whitespace, and the file ends with a newline.
const TRAIN: &str = "the cat sat\n\nthe dog sat\n   \t\r\nThe cat\n";

/// Expected vocabulary for `TRAIN`: descending count, ties in byte order, `<unk>` added last.
const TRAIN_VOCAB: [&str; 7] = ["<eos>", "cat", "sat", "the", "The", "dog", "<unk>"];

fn write_corpus(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().expect("create temporary directory");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write corpus file");
    }
    dir
}

/// Writes a corpus with plain file names whose valid and test splits contain only training words.
fn plain_corpus() -> TempDir {
    write_corpus(&[
        ("train.txt", TRAIN.as_bytes()),
        ("valid.txt", b"the cat\n"),
        ("test.txt", b"dog sat"),
    ])
}

fn vocab_of(tokens: &[&str]) -> Vocab {
    Vocab::from_tokens(tokens.iter().map(|t| t.to_string()).collect(), "test").unwrap()
}

fn expect_error(dir: &Path) -> String {
    match Corpus::load(dir, None) {
        Ok(_) => panic!("loading {} succeeded, expected an error", dir.display()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn vocab_order_counts_then_bytes() {
    let dir = plain_corpus();
    let corpus = Corpus::load(dir.path(), None).unwrap();
    assert_eq!(corpus.vocab.tokens(), TRAIN_VOCAB);
}

#[test]
fn train_ids_and_eos_placement() {
    let dir = plain_corpus();
    let corpus = Corpus::load(dir.path(), None).unwrap();
    // the cat sat <eos> | the dog sat <eos> | The cat <eos>. Blank lines add nothing.
    assert_eq!(corpus.train.ids, [3, 1, 2, 0, 3, 5, 2, 0, 4, 1, 0]);
    assert_eq!(corpus.train.unknown_tokens, 0);
    assert_eq!(corpus.train.path, dir.path().join("train.txt"));
}

#[test]
fn last_line_without_newline_gets_eos() {
    let dir = plain_corpus();
    let corpus = Corpus::load(dir.path(), None).unwrap();
    assert_eq!(corpus.valid.ids, [3, 1, 0]);
    assert_eq!(corpus.test.ids, [5, 2, 0]);
}

#[test]
fn literal_unk_counted_in_vocab() {
    let dir = write_corpus(&[
        ("train.txt", b"a <unk> <unk>\nb <unk>\n"),
        ("valid.txt", b"<unk> a\n"),
        ("test.txt", b"b\n"),
    ]);
    let corpus = Corpus::load(dir.path(), None).unwrap();
    // <unk> 3, <eos> 2, then a and b once each.
    assert_eq!(corpus.vocab.tokens(), ["<unk>", "<eos>", "a", "b"]);
    assert_eq!(corpus.valid.ids, [0, 2, 1]);
    assert_eq!(corpus.valid.unknown_tokens, 0);
}

#[test]
fn ptb_file_names_accepted() {
    let plain = plain_corpus();
    let ptb = write_corpus(&[
        ("ptb.train.txt", TRAIN.as_bytes()),
        ("ptb.valid.txt", b"the cat\n"),
        ("ptb.test.txt", b"dog sat"),
    ]);
    let from_plain = Corpus::load(plain.path(), None).unwrap();
    let from_ptb = Corpus::load(ptb.path(), None).unwrap();
    assert_eq!(from_ptb.vocab, from_plain.vocab);
    assert_eq!(from_ptb.train.ids, from_plain.train.ids);
    assert_eq!(from_ptb.valid.ids, from_plain.valid.ids);
    assert_eq!(from_ptb.test.ids, from_plain.test.ids);
    assert_eq!(from_ptb.test.path, ptb.path().join("ptb.test.txt"));
}

#[test]
fn mixed_file_names_accepted() {
    let dir = write_corpus(&[
        ("train.txt", TRAIN.as_bytes()),
        ("ptb.valid.txt", b"the cat\n"),
        ("test.txt", b"dog sat"),
    ]);
    let corpus = Corpus::load(dir.path(), None).unwrap();
    assert_eq!(corpus.valid.path, dir.path().join("ptb.valid.txt"));
    assert_eq!(corpus.split(Split::Valid).ids, [3, 1, 0]);
}

#[test]
fn both_naming_styles_rejected() {
    let dir = plain_corpus();
    std::fs::write(dir.path().join("ptb.test.txt"), b"dog\n").unwrap();
    let message = expect_error(dir.path());
    assert!(message.contains("test split found twice"), "{message}");
    assert!(message.contains(&dir.path().join("test.txt").display().to_string()), "{message}");
    assert!(message.contains(&dir.path().join("ptb.test.txt").display().to_string()), "{message}");
}

#[test]
fn missing_split_names_both_files() {
    let dir = write_corpus(&[("train.txt", TRAIN.as_bytes()), ("test.txt", b"dog\n")]);
    let message = expect_error(dir.path());
    assert!(message.contains("valid split missing"), "{message}");
    assert!(message.contains(&dir.path().display().to_string()), "{message}");
    assert!(message.contains("valid.txt or ptb.valid.txt"), "{message}");
}

#[test]
fn missing_directory_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-corpus");
    let message = expect_error(&missing);
    assert!(message.contains("not found"), "{message}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
}

#[test]
fn blank_split_is_empty_error() {
    let dir = write_corpus(&[
        ("train.txt", TRAIN.as_bytes()),
        ("valid.txt", b"\n  \n\t\n"),
        ("test.txt", b"dog\n"),
    ]);
    let error = Corpus::load(dir.path(), None).unwrap_err();
    assert!(matches!(error, CorpusError::EmptySplit { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&dir.path().join("valid.txt").display().to_string()), "{message}");
    assert!(message.contains("no tokens"), "{message}");
}

#[test]
fn zero_byte_train_is_empty_error() {
    let dir = write_corpus(&[("train.txt", b""), ("valid.txt", b"a\n"), ("test.txt", b"a\n")]);
    let error = Corpus::load(dir.path(), None).unwrap_err();
    let CorpusError::EmptySplit { path } = error else {
        panic!("expected EmptySplit, got {error:?}");
    };
    assert_eq!(path, dir.path().join("train.txt"));
}

#[test]
fn invalid_utf8_names_line() {
    let dir = write_corpus(&[
        ("train.txt", b"first line\n\nab \xff cd\nlast\n"),
        ("valid.txt", b"a\n"),
        ("test.txt", b"a\n"),
    ]);
    let message = expect_error(dir.path());
    let location = format!("{}:3:", dir.path().join("train.txt").display());
    assert!(message.contains(&location), "{message}");
    assert!(message.contains("invalid UTF-8 at byte 3"), "{message}");
}

#[test]
fn vocab_over_limit_rejected() {
    let dir = plain_corpus();
    let error = Corpus::load(dir.path(), Some(6)).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&dir.path().join("train.txt").display().to_string()), "{message}");
    assert!(message.contains("has 7 distinct tokens"), "{message}");
    assert!(message.contains("limit of 6"), "{message}");
    assert!(message.contains("raise the limit"), "{message}");
    assert!(message.contains("<unk>"), "{message}");
}

#[test]
fn vocab_at_limit_accepted() {
    let dir = plain_corpus();
    let corpus = Corpus::load(dir.path(), Some(7)).unwrap();
    assert_eq!(corpus.vocab.len(), 7);
}

#[test]
fn split_that_is_directory_is_io_error() {
    let dir = plain_corpus();
    std::fs::remove_file(dir.path().join("test.txt")).unwrap();
    std::fs::create_dir(dir.path().join("test.txt")).unwrap();
    let error = Corpus::load(dir.path(), None).unwrap_err();
    assert!(matches!(error, CorpusError::Io { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("failed to read"), "{message}");
    assert!(message.contains(&dir.path().join("test.txt").display().to_string()), "{message}");
}

#[test]
fn unknown_words_map_to_unk() {
    let dir = write_corpus(&[
        ("train.txt", TRAIN.as_bytes()),
        ("valid.txt", b"the fish sat\n<unk> bird fish\n"),
        ("test.txt", b"the cat\n"),
    ]);
    let corpus = Corpus::load(dir.path(), None).unwrap();
    let unk = corpus.vocab.unk_id() as i64;
    assert_eq!(unk, 6);
    assert_eq!(corpus.valid.ids, [3, unk, 2, 0, unk, unk, unk, 0]);
    // fish twice and bird once. The literal <unk> is a vocabulary token, so it is not counted.
    assert_eq!(corpus.valid.unknown_tokens, 3);
    assert_eq!(corpus.test.unknown_tokens, 0);
    assert_eq!(corpus.train.unknown_tokens, 0);
}

#[test]
fn given_vocab_maps_all_splits() {
    let dir = plain_corpus();
    let vocab = vocab_of(&["<unk>", "<eos>", "the", "cat"]);
    let corpus = Corpus::load_with_vocab(dir.path(), vocab.clone()).unwrap();
    assert_eq!(corpus.vocab, vocab);
    // the cat sat <eos> | the dog sat <eos> | The cat <eos>
    assert_eq!(corpus.train.ids, [2, 3, 0, 1, 2, 0, 0, 1, 0, 3, 1]);
    assert_eq!(corpus.train.unknown_tokens, 4);
    assert_eq!(corpus.valid.ids, [2, 3, 1]);
    assert_eq!(corpus.valid.unknown_tokens, 0);
    assert_eq!(corpus.test.ids, [0, 0, 1]);
    assert_eq!(corpus.test.unknown_tokens, 2);
}

#[test]
fn read_split_single_file() {
    let dir = write_corpus(&[("sample.txt", b"the cat\r\n\r\nthe bird\n")]);
    let vocab = vocab_of(&["<eos>", "<unk>", "the", "cat"]);
    let split = read_split(&dir.path().join("sample.txt"), &vocab).unwrap();
    assert_eq!(split.ids, [2, 3, 0, 2, 1, 0]);
    assert_eq!(split.unknown_tokens, 1);
    assert_eq!(split.path, dir.path().join("sample.txt"));
}

#[test]
fn find_split_prefers_existing_style() {
    let dir = write_corpus(&[("ptb.valid.txt", b"a\n")]);
    assert_eq!(find_split(dir.path(), Split::Valid).unwrap(), dir.path().join("ptb.valid.txt"));
    let error = find_split(dir.path(), Split::Test).unwrap_err();
    assert!(matches!(error, CorpusError::MissingSplit { split: Split::Test, .. }), "{error:?}");
}

/// Collects formatted log output so a test can check what was logged.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn unknown_words_warn_once_per_split() {
    let dir = write_corpus(&[
        ("train.txt", TRAIN.as_bytes()),
        ("valid.txt", b"the fish sat\nbird fish\n"),
        ("test.txt", b"the cow\n"),
    ]);
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        Corpus::load(dir.path(), None).unwrap();
    });

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[0].contains("WARN"), "{log}");
    assert!(lines[0].contains("split=valid"), "{log}");
    assert!(lines[0].contains("unknown_tokens=3"), "{log}");
    assert!(lines[0].contains(r#"["fish", "bird"]"#), "{log}");
    assert!(lines[1].contains("split=test"), "{log}");
    assert!(lines[1].contains("unknown_tokens=1"), "{log}");
    assert!(lines[1].contains(r#"["cow"]"#), "{log}");
}

#[test]
fn batched_layout_drops_remainder() {
    let ids: Vec<i64> = (0..11).collect();
    let batched = Batched::new(&ids, 3).unwrap();
    // Columns [0 1 2 3], [3 4 5 6], [6 7 8 9]; token 10 is dropped.
    assert_eq!(batched.data(), [0, 3, 6, 1, 4, 7, 2, 5, 8, 3, 6, 9]);
    assert_eq!(batched.steps(), 3);
    assert_eq!(batched.batch_size(), 3);
    assert_eq!(batched.dropped(), 1);
    assert_eq!(batched.num_target_tokens(), 9);
}

#[test]
fn batched_exact_fit_drops_nothing() {
    let ids: Vec<i64> = (0..7).collect();
    let batched = Batched::new(&ids, 3).unwrap();
    assert_eq!(batched.data(), [0, 2, 4, 1, 3, 5, 2, 4, 6]);
    assert_eq!(batched.steps(), 2);
    assert_eq!(batched.dropped(), 0);
}

#[test]
fn windows_last_one_shorter() {
    let ids: Vec<i64> = (0..11).collect();
    let batched = Batched::new(&ids, 3).unwrap();
    let windows = batched.windows(2).unwrap();
    assert_eq!(windows.num_windows(), 2);
    assert_eq!(windows.num_target_tokens(), 9);

    let first = windows.window(0).unwrap();
    assert_eq!(first.shape(), [2, 3]);
    assert_eq!(first.input, [0, 3, 6, 1, 4, 7]);
    assert_eq!(first.target, [1, 4, 7, 2, 5, 8]);

    let last = windows.window(1).unwrap();
    assert_eq!(last.shape(), [1, 3]);
    assert_eq!(last.input, [2, 5, 8]);
    assert_eq!(last.target, [3, 6, 9]);

    assert!(windows.window(2).is_none());
}

#[test]
fn window_iterators_match_indexing() {
    let ids: Vec<i64> = (0..11).collect();
    let batched = Batched::new(&ids, 3).unwrap();
    let windows = batched.windows(2).unwrap();

    let all: Vec<_> = windows.iter().collect();
    assert_eq!(all, [windows.window(0).unwrap(), windows.window(1).unwrap()]);
    assert_eq!(windows.iter().len(), 2);

    let resumed: Vec<_> = windows.iter_from(1).collect();
    assert_eq!(resumed, [windows.window(1).unwrap()]);
    assert_eq!(windows.iter_from(5).count(), 0);
    assert_eq!(windows.iter().nth(1), windows.window(1));
    assert_eq!(windows.into_iter().count(), 2);
}

#[test]
fn windows_cover_every_target_once() {
    let ids: Vec<i64> = (0..1000).map(|i| i * 7 % 1009).collect();
    let batch_size = 7;
    let batched = Batched::new(&ids, batch_size).unwrap();
    let windows = batched.windows(5).unwrap();
    let steps = batched.steps();
    assert_eq!(steps, 142);
    assert_eq!(batched.dropped(), 5);
    assert_eq!(windows.num_windows(), 29);

    let mut columns_input = vec![Vec::new(); batch_size];
    let mut columns_target = vec![Vec::new(); batch_size];
    let mut targets_seen = 0;
    for window in windows {
        assert_eq!(window.input.len(), window.steps * batch_size);
        assert_eq!(window.target.len(), window.steps * batch_size);
        for row in 0..window.steps {
            for column in 0..batch_size {
                columns_input[column].push(window.input[row * batch_size + column]);
                columns_target[column].push(window.target[row * batch_size + column]);
            }
        }
        targets_seen += window.target.len();
    }
    assert_eq!(targets_seen, windows.num_target_tokens());

    let inputs: Vec<i64> = columns_input.concat();
    let targets: Vec<i64> = columns_target.concat();
    assert_eq!(inputs, ids[..steps * batch_size]);
    assert_eq!(targets, ids[1..=steps * batch_size]);
}

#[test]
fn batched_minimum_length() {
    let error = Batched::new(&[1, 2, 3], 3).unwrap_err();
    assert_eq!(error, BatchError::TooShort { tokens: 3, batch_size: 3 });
    let message = error.to_string();
    assert!(message.contains("3 tokens"), "{message}");
    assert!(message.contains("batch size of 3"), "{message}");
    assert!(message.contains("at least 4"), "{message}");

    let batched = Batched::new(&[1, 2, 3, 4], 3).unwrap();
    assert_eq!(batched.steps(), 1);
    assert_eq!(batched.data(), [1, 2, 3, 2, 3, 4]);
    assert_eq!(batched.windows(35).unwrap().num_windows(), 1);
}

#[test]
fn zero_sizes_rejected() {
    assert_eq!(Batched::new(&[1, 2, 3], 0).unwrap_err(), BatchError::ZeroBatchSize);
    let batched = Batched::new(&[1, 2, 3], 1).unwrap();
    assert_eq!(batched.windows(0).unwrap_err(), BatchError::ZeroBptt);
}

#[test]
fn penn_treebank_counts() {
    let dir = ptb_dir();
    assert!(
        dir.is_dir(),
        "Penn Treebank not found at {}; place ptb.train.txt, ptb.valid.txt and ptb.test.txt there",
        dir.display()
    );
    let corpus = Corpus::load(&dir, Some(10_000)).unwrap();
    assert_eq!(corpus.vocab.len(), 10_000);
    assert_eq!(corpus.train.ids.len(), 929_589);
    assert_eq!(corpus.valid.ids.len(), 73_760);
    assert_eq!(corpus.test.ids.len(), 82_430);
    assert_eq!(corpus.valid.unknown_tokens, 0);
    assert_eq!(corpus.test.unknown_tokens, 0);

    // The most frequent word of the training split is "the", then <unk>, then <eos>.
    assert_eq!(corpus.vocab.token(0), Some("the"));
    assert_eq!(corpus.vocab.token(1), Some("<unk>"));
    assert_eq!(corpus.vocab.token(2), Some("<eos>"));
}

#[test]
fn byte_order_mark_is_skipped() {
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), TRAIN.as_bytes()].concat();
    let dir = write_corpus(&[
        ("train.txt", with_bom.as_slice()),
        ("valid.txt", b"\xEF\xBB\xBFthe cat\n"),
        ("test.txt", b"dog sat"),
    ]);
    let corpus = Corpus::load(dir.path(), None).unwrap();
    assert_eq!(corpus.vocab.tokens(), TRAIN_VOCAB);
    assert_eq!(corpus.valid.ids, [3, 1, 0]);
    assert_eq!(corpus.valid.unknown_tokens, 0);
}
