//! Export of the committed Penn Treebank checkpoint `models/ptb-small`, on slices of the
//! Penn Treebank splits so the tests stay short. `edgenas export` reads whole splits; the
//! figures of docs/RESULTS.md come from there.

mod common;

use edgenas_export::calibrate::{calibrate, first_sentences};
use edgenas_export::checks::{perplexity, FLOAT_LOGIT_TOLERANCE, INT8_PERPLEXITY_TOLERANCE};
use edgenas_export::export::{EXPORT_FILES, INT8_FILE};
use edgenas_export::onnx::{self, read_metadata, Int8Scheme};
use edgenas_export::reference::Reference;
use edgenas_export::tract::TractModel;
use edgenas_export::{export, Checkpoint, ExportOptions, ExportText, NoProgress};

/// Largest int8 file accepted, as a fraction of the float32 file.
const MAX_INT8_SIZE_RATIO: f64 = 0.30;
/// Tokens of each split the tests read: about a quarter of the validation split.
const SLICE_TOKENS: usize = 20_000;

#[test]
fn ptb_small_export_passes_checks() {
    let checkpoint = Checkpoint::load(&common::ptb_small()).unwrap();
    let valid = common::ptb_ids("valid", &checkpoint.vocab, SLICE_TOKENS);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("export");
    let options = ExportOptions {
        latency_steps: 50,
        ..Default::default()
    };
    let text = ExportText {
        valid: &valid,
        calibration: None,
    };
    let report = export(&checkpoint, &out_dir, &text, &options, &mut NoProgress).unwrap();
    eprintln!("{report}");

    assert!(report.passed(), "{report}");
    assert!(
        report.float_check.comparison.max_abs_logit_diff <= FLOAT_LOGIT_TOLERANCE,
        "{report}"
    );
    assert!(
        report.perplexity_check.relative_change.abs() <= INT8_PERPLEXITY_TOLERANCE,
        "{report}"
    );
    assert!(report.int8_size_ratio <= MAX_INT8_SIZE_RATIO, "{report}");
    let mut expected: Vec<String> = EXPORT_FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(common::entries(&out_dir), expected);

    let metadata = read_metadata(&out_dir.join(INT8_FILE)).unwrap();
    assert_eq!(metadata.arch, checkpoint.arch);
    assert_eq!(metadata.vocab, checkpoint.vocab);
}

#[test]
fn ptb_small_int8_test_perplexity_within_3_percent() {
    let checkpoint = Checkpoint::load(&common::ptb_small()).unwrap();
    let (h, v) = (checkpoint.arch.hidden_size, checkpoint.arch.vocab_size);
    let test = common::ptb_ids("test", &checkpoint.vocab, SLICE_TOKENS / 2);
    let train = common::ptb_ids("train", &checkpoint.vocab, SLICE_TOKENS);
    let reference = Reference::new(&checkpoint.arch, &checkpoint.weights);
    let calibration = first_sentences(&train, checkpoint.vocab.eos_id() as i64, 300);
    let ranges = calibrate(&reference, &checkpoint.arch, calibration).unwrap();

    let run = |bytes: &[u8]| {
        let model = TractModel::load(bytes, h, "test").unwrap();
        perplexity(&model, &test, 10, v, h, "test", &mut NoProgress)
            .unwrap()
            .perplexity
    };
    let float = run(&onnx::float_model(&checkpoint));
    for scheme in [
        Int8Scheme::WeightsOnly,
        Int8Scheme::Dynamic,
        Int8Scheme::Static(ranges),
    ] {
        let bytes = onnx::int8_model(&checkpoint, &scheme);
        let size_ratio = bytes.len() as f64 / onnx::float_model(&checkpoint).len() as f64;
        let int8 = run(&bytes);
        let change = int8 / float - 1.0;
        eprintln!(
            "{}: test perplexity {int8:.2} against {float:.2} ({:+.2}%)",
            scheme.name(),
            change * 100.0
        );
        assert!(
            change.abs() <= INT8_PERPLEXITY_TOLERANCE,
            "{}: {int8:.2} against {float:.2}",
            scheme.name()
        );
        assert!(
            size_ratio <= MAX_INT8_SIZE_RATIO,
            "{}: size ratio {size_ratio:.3}",
            scheme.name()
        );
    }
}
