//! Cost model and device profile tests. Every expected number is derived by hand from the
//! formulas in `edgenas_core::cost`, on a test profile with round throughput figures and
//! the default (Horowitz, 45 nm) energy table.

use std::path::{Path, PathBuf};

use edgenas_core::cost::{self, weight_memory};
use edgenas_core::{
    estimate, Activation, Arch, Dropout, Dtype, EnergyTable, LatencySource, Profile, ProfileError,
    WeightMemory,
};

use Activation::{Identity, Relu, Sigmoid, Tanh};

/// Test board: 512 KiB cache, 1000 bytes of runtime overhead, 1 GMAC/s int8, 0.1 GMAC/s
/// float32, 100 us overhead per word, 40 ms latency budget (60000 / 250 - 200).
fn profile_toml(budgets_extra: &str, tail: &str) -> String {
    format!(
        r#"name = "test-board"
description = "Round figures for hand-checked tests"
[device]
cpu = "Cortex-A53"
cores = 4
clock_mhz = 1000
cache_bytes = 524288
ram_bytes = 536870912
[deploy]
dtype = "int8"
runtime_overhead_bytes = 1000
[budgets]
words_per_minute = 250
recognizer_ms_per_word = 200
{budgets_extra}
[latency]
f32_macs_per_second = 1e8
int8_macs_per_second = 1e9
overhead_us_per_word = 100
{tail}
"#
    )
}

fn test_profile(dtype: Dtype) -> Profile {
    let mut profile = Profile::parse(&profile_toml("", ""), "test.toml").unwrap();
    profile.deploy.dtype = dtype;
    profile
}

fn arch(v: usize, h: usize, first: Activation, rest: &[(usize, Activation)], tied: bool) -> Arch {
    let mut arch = Arch::new(v, h, first, rest, Dropout::NONE).unwrap();
    arch.tie_weights = tied;
    arch
}

/// Reference model: V=10000, H=128, 5 nodes, tied, with loose ends 3 and 4.
fn reference_model() -> Arch {
    let rest = [(0, Relu), (1, Tanh), (1, Identity), (2, Sigmoid)];
    arch(10_000, 128, Tanh, &rest, true)
}

fn assert_close(actual: f64, expected: f64, label: &str) {
    let tolerance = 1e-9 * expected.abs().max(1e-12);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{label}: got {actual}, expected {expected}"
    );
}

fn shipped_profile(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(file)
}

struct Row {
    name: &'static str,
    arch: Arch,
    dtype: Dtype,
    parameters: u64,
    bytes_float32: u64,
    bytes_int8: u64,
    macs: u64,
    adds: u64,
    mults: u64,
    read_bytes: u64,
    ram: u64,
    memory: WeightMemory,
    arithmetic_uj: f64,
    memory_uj: f64,
    latency_ms: f64,
}

const SRAM_8K: WeightMemory = WeightMemory::Sram {
    capacity_bytes: 8192,
    read_pj_per_64bit: 10.0,
};

#[test]
fn cost_table_matches_hand_derivations() {
    let chain = || arch(50, 4, Tanh, &[(0, Sigmoid), (1, Identity)], true);
    let fan_out = || arch(50, 4, Tanh, &[(0, Sigmoid), (0, Identity)], true);
    let rows = [
        Row {
            name: "V=10000 H=128 5 nodes tied int8",
            arch: reference_model(),
            dtype: Dtype::Int8,
            parameters: 1_486_608,    // 10000*128 + 10000 + 2*128*128*6
            bytes_float32: 5_946_432, // 4 * 1486608
            bytes_int8: 1_562_752,    // (10000 + 256*6 rows) * (128 + 4) + 4*10000 bias
            macs: 1_476_608,          // 2*128*128*6 + 10000*128
            adds: 43_712, // nodes (15 + 6 activation)*128 + mean 128 + bias/softmax 40000 + quant 7*128
            mults: 25_120, // nodes (15 + 5)*128 + mean 128 + softmax 10000 + quant 7*128 + rescale 1536 + 10000
            read_bytes: 1_562_752, // tied: every weight is read per word
            ram: 1_652_456, // 1562752 + 4*(256 + 1920 + 20000) working set + 1000
            memory: WeightMemory::Dram {
                read_pj_per_64bit: 2000.0,
            }, // 1562752 > 524288 cache
            arithmetic_uj: 0.471_904_64, // (1476608*0.23 + 43712*0.9 + 25120*3.7) pJ
            memory_uj: 390.688, // 1562752 / 8 * 2000 pJ
            latency_ms: 2.264_928, // 1476608/1e9 s + 68832/1e8 s + 100 us
        },
        Row {
            name: "V=100 H=8 1 node untied int8",
            arch: arch(100, 8, Relu, &[], false),
            dtype: Dtype::Int8,
            parameters: 1956,    // 800 embedding + 100 bias + 800 decoder + 2*64*2
            bytes_float32: 7824, // 4 * 1956
            bytes_int8: 3184,    // (100 + 100 + 32 rows) * (8 + 4) + 400 bias
            macs: 1056,          // 2*8*8*2 + 100*8
            adds: 456,           // node (3 + 1)*8 + bias/softmax 400 + quant 3*8
            mults: 280,          // node 3*8 + softmax 100 + quant 3*8 + rescale 32 + 100
            read_bytes: 1996,    // (232 - 99 unread embedding rows) * 12 + 400
            ram: 5144,           // 3184 + 4*(16 + 24 + 200) + 1000
            memory: SRAM_8K,     // 1996 <= 8192
            arithmetic_uj: 0.001_689_28, // (1056*0.23 + 456*0.9 + 280*3.7) pJ
            memory_uj: 0.002_495, // 1996 / 8 * 10 pJ
            latency_ms: 0.108_416, // 1056/1e9 s + 736/1e8 s + 100 us
        },
        Row {
            name: "V=100 H=8 1 node untied float32",
            arch: arch(100, 8, Relu, &[], false),
            dtype: Dtype::Float32,
            parameters: 1956,
            bytes_float32: 7824,
            bytes_int8: 3184,
            macs: 1056,
            adds: 432,                  // node 4*8 + bias/softmax 400
            mults: 124,                 // node 3*8 + softmax 100
            read_bytes: 4656,           // (232 - 99) * 32 + 400
            ram: 9784,                  // 7824 + 960 + 1000
            memory: SRAM_8K,            // 4656 <= 8192
            arithmetic_uj: 0.005_705_2, // (1056*4.6 + 432*0.9 + 124*3.7) pJ
            memory_uj: 0.005_82,        // 4656 / 8 * 10 pJ
            latency_ms: 0.116_12,       // 1056/1e8 s + 556/1e8 s + 100 us
        },
        Row {
            name: "V=50 H=4 3 nodes chain float32",
            arch: chain(),
            dtype: Dtype::Float32,
            parameters: 378,     // 200 + 50 + 2*16*4
            bytes_float32: 1512, // 4 * 378
            bytes_int8: 856,     // (50 + 32 rows) * (4 + 4) + 200
            macs: 328,           // 2*4*4*4 + 50*4
            adds: 248,           // nodes (9 + 3)*4 + bias/softmax 200 (one loose end needs no mean)
            mults: 98,           // nodes (9 + 3)*4 + softmax 50
            read_bytes: 1512,    // tied: every weight is read per word
            ram: 3088,           // 1512 + 4*(8 + 36 + 100) + 1000
            memory: SRAM_8K,
            arithmetic_uj: 0.002_094_6, // (328*4.6 + 248*0.9 + 98*3.7) pJ
            memory_uj: 0.001_89,        // 1512 / 8 * 10 pJ
            latency_ms: 0.106_74,       // 328/1e8 s + 346/1e8 s + 100 us
        },
        Row {
            name: "V=50 H=4 3 nodes fan-out float32",
            arch: fan_out(),
            dtype: Dtype::Float32,
            parameters: 378,
            bytes_float32: 1512,
            bytes_int8: 856,
            macs: 328,
            adds: 252,  // chain's 248 + mean of 2 loose ends: 4
            mults: 102, // chain's 98 + scale by 1/2: 4
            read_bytes: 1512,
            ram: 3088,
            memory: SRAM_8K,
            arithmetic_uj: 0.002_113, // (328*4.6 + 252*0.9 + 102*3.7) pJ
            memory_uj: 0.001_89,
            latency_ms: 0.106_82, // 328/1e8 s + 354/1e8 s + 100 us
        },
        Row {
            name: "V=50 H=4 3 nodes chain int8",
            arch: chain(),
            dtype: Dtype::Int8,
            parameters: 378,
            bytes_float32: 1512,
            bytes_int8: 856,
            macs: 328,
            adds: 268,       // float32's 248 + quant 5*4
            mults: 200,      // float32's 98 + quant 5*4 + rescale 32 + 50
            read_bytes: 856, // tied: every weight is read per word
            ram: 2432,       // 856 + 576 + 1000
            memory: SRAM_8K,
            arithmetic_uj: 0.001_056_64, // (328*0.23 + 268*0.9 + 200*3.7) pJ
            memory_uj: 0.001_07,         // 856 / 8 * 10 pJ
            latency_ms: 0.105_008,       // 328/1e9 s + 468/1e8 s + 100 us
        },
    ];

    for row in rows {
        let report = estimate(&row.arch, &test_profile(row.dtype));
        let at_dtype = if row.dtype == Dtype::Int8 {
            row.bytes_int8
        } else {
            row.bytes_float32
        };
        let name = row.name;
        assert_eq!(report.parameters, row.parameters, "{name}: parameters");
        assert_eq!(
            report.model_bytes_float32, row.bytes_float32,
            "{name}: float32 bytes"
        );
        assert_eq!(
            report.model_bytes_int8, row.bytes_int8,
            "{name}: int8 bytes"
        );
        assert_eq!(report.model_bytes, at_dtype, "{name}: model bytes");
        assert_eq!(report.macs_per_word, row.macs, "{name}: MACs");
        assert_eq!(
            report.elementwise_ops_per_word.adds, row.adds,
            "{name}: adds"
        );
        assert_eq!(
            report.elementwise_ops_per_word.mults, row.mults,
            "{name}: mults"
        );
        assert_eq!(
            report.weight_bytes_read_per_word, row.read_bytes,
            "{name}: read bytes"
        );
        assert_eq!(report.ram_bytes, row.ram, "{name}: RAM");
        assert_eq!(report.weight_memory, row.memory, "{name}: weight memory");
        assert_close(report.arithmetic_uj_per_word, row.arithmetic_uj, name);
        assert_close(report.memory_uj_per_word, row.memory_uj, name);
        assert_close(
            report.energy_uj_per_word,
            row.arithmetic_uj + row.memory_uj,
            name,
        );
        assert_close(report.latency_ms_per_word, row.latency_ms, name);
        assert_eq!(
            report.latency_source,
            LatencySource::Estimate,
            "{name}: source"
        );
        assert_eq!(
            report.parameters,
            row.arch.num_parameters() as u64,
            "{name}: vs Arch"
        );
    }
}

#[test]
fn budgets_met_at_exact_value() {
    // The untied V=100 H=8 row at int8: 1956 parameters, 3184 bytes, 5144 bytes of RAM,
    // 0.00418428 uJ. The measured 40000 us equals the 40 ms derived budget.
    let measured = "[[latency.measured]]\nhidden_size = 8\nnum_nodes = 1\ndtype = \"int8\"\nus_per_word = 40000.0";
    let budgets = |params: u64, bytes: u64, ram: u64, energy: f64| {
        format!("max_parameters = {params}\nmax_model_bytes = {bytes}\nmax_ram_bytes = {ram}\nmax_energy_uj_per_word = {energy}")
    };
    let model = arch(100, 8, Relu, &[], false);

    let at_budget = Profile::parse(
        &profile_toml(&budgets(1956, 3184, 5144, 0.005), measured),
        "t",
    )
    .unwrap();
    let report = estimate(&model, &at_budget);
    let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["parameters", "model size", "RAM", "latency", "energy"]
    );
    for check in &report.checks {
        assert!(check.met, "{} should be met: {check:?}", check.name);
    }
    assert!(report.all_met());

    let mut over =
        Profile::parse(&profile_toml(&budgets(1955, 3183, 5143, 0.004), ""), "t").unwrap();
    over.budgets.max_latency_ms_per_word = Some(0.1); // estimate is 0.108416 ms
    let report = estimate(&model, &over);
    for check in &report.checks {
        assert!(!check.met, "{} should fail: {check:?}", check.name);
    }
    assert!(!report.all_met());
}

#[test]
fn unbudgeted_costs_have_no_check() {
    let report = estimate(&reference_model(), &test_profile(Dtype::Int8));
    let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["latency"]);
    assert_eq!(report.checks[0].budget, 40.0);
}

#[test]
fn sram_tier_chosen_at_edges() {
    let energy = EnergyTable::default();
    let sram = |capacity_bytes, read_pj_per_64bit| WeightMemory::Sram {
        capacity_bytes,
        read_pj_per_64bit,
    };
    let dram = WeightMemory::Dram {
        read_pj_per_64bit: 2000.0,
    };
    let cases = [
        // (bytes read per word, cache bytes, expected memory)
        (1, 1 << 20, sram(8192, 10.0)),
        (8192, 1 << 20, sram(8192, 10.0)),
        (8193, 1 << 20, sram(32768, 20.0)),
        (32768, 1 << 20, sram(32768, 20.0)),
        (32769, 1 << 20, sram(1 << 20, 100.0)),
        (1 << 20, 1 << 20, sram(1 << 20, 100.0)),
        (1 << 20 | 1, 1 << 20, dram), // one byte over the cache
        (524_289, 524_288, dram),     // fits the 1 MB tier but not a 512 KB cache
        (4096, 0, dram),              // no cache
        (2 << 20, 4 << 20, sram(1 << 20, 100.0)), // above every tier: largest tier
    ];
    for (read_bytes, cache_bytes, expected) in cases {
        let got = weight_memory(read_bytes, cache_bytes, &energy);
        assert_eq!(
            got, expected,
            "{read_bytes} bytes read, {cache_bytes} bytes of cache"
        );
    }
}

#[test]
fn latency_budget_derived_from_speaking_rate() {
    let profile = test_profile(Dtype::Int8);
    assert_eq!(profile.budgets.derived_latency_ms_per_word(), 40.0); // 60000/250 - 200
    assert_eq!(profile.budgets.latency_ms_per_word(), 40.0);

    let with_max = Profile::parse(&profile_toml("max_latency_ms_per_word = 30", ""), "t").unwrap();
    assert_eq!(with_max.budgets.latency_ms_per_word(), 30.0);
    let at_derived =
        Profile::parse(&profile_toml("max_latency_ms_per_word = 40", ""), "t").unwrap();
    assert_eq!(at_derived.budgets.latency_ms_per_word(), 40.0);
}

#[test]
fn latency_budget_above_derived_rejected() {
    let err = Profile::parse(
        &profile_toml("max_latency_ms_per_word = 50", ""),
        "board.toml",
    )
    .unwrap_err();
    assert!(
        matches!(err, ProfileError::LatencyAboveDerived { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("board.toml"), "{message}");
    assert!(
        message.contains("max_latency_ms_per_word = 50"),
        "{message}"
    );
    assert!(message.contains("40 ms per word"), "{message}");
    assert!(message.contains("words_per_minute = 250"), "{message}");
}

#[test]
fn recognizer_using_whole_word_rejected() {
    let text = profile_toml("", "").replace(
        "recognizer_ms_per_word = 200",
        "recognizer_ms_per_word = 240",
    );
    let message = Profile::parse(&text, "board.toml").unwrap_err().to_string();
    assert!(
        message.contains("budgets.recognizer_ms_per_word = 240"),
        "{message}"
    );
    assert!(message.contains("leaves no time"), "{message}");
}

#[test]
fn measured_latency_overrides_estimate() {
    let entry = |h: usize, vocab: &str, dtype: &str, us: f64| {
        format!("[[latency.measured]]\nhidden_size = {h}\nnum_nodes = 1\n{vocab}dtype = \"{dtype}\"\nus_per_word = {us:?}\n")
    };
    let model = arch(100, 8, Relu, &[], false);
    let cases = [
        // (measured entries, expected ms, expected source)
        (entry(8, "", "int8", 250.0), 0.25, LatencySource::Measured),
        (
            entry(8, "vocab_size = 100\n", "int8", 300.0),
            0.3,
            LatencySource::Measured,
        ),
        (
            entry(8, "", "int8", 250.0) + &entry(8, "vocab_size = 100\n", "int8", 300.0),
            0.3,
            LatencySource::Measured,
        ),
        (
            entry(8, "vocab_size = 99\n", "int8", 300.0),
            0.108_416,
            LatencySource::Estimate,
        ),
        (
            entry(16, "", "int8", 250.0),
            0.108_416,
            LatencySource::Estimate,
        ),
        (
            entry(8, "", "float32", 250.0),
            0.108_416,
            LatencySource::Estimate,
        ),
    ];
    for (entries, ms, source) in cases {
        let profile = Profile::parse(&profile_toml("", &entries), "t").unwrap();
        let report = estimate(&model, &profile);
        assert_eq!(report.latency_source, source, "{entries}");
        assert_close(report.latency_ms_per_word, ms, &entries);
    }
}

#[test]
fn energy_table_defaults_to_horowitz() {
    let partial = Profile::parse(
        &profile_toml("", "[energy]\ndram_read_pj_per_64bit = 1300.0"),
        "t",
    )
    .unwrap();
    let defaults = EnergyTable::default();
    assert_eq!(partial.energy.dram_read_pj_per_64bit, 1300.0);
    assert_eq!(partial.energy.f32_mult_pj, 3.7);
    assert_eq!(partial.energy.int8_add_pj, 0.03);
    assert_eq!(partial.energy.sram, defaults.sram);
    assert_eq!(test_profile(Dtype::Int8).energy, defaults);
}

/// Writes `text` to a profile file in a fresh folder and loads it.
fn load_text(text: &str) -> (String, ProfileError) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("board.toml");
    std::fs::write(&path, text).unwrap();
    let err = Profile::load(&path).unwrap_err();
    (path.display().to_string(), err)
}

#[test]
fn profile_errors_name_file_and_key() {
    let base = profile_toml("", "");
    let cases = [
        // (profile text, fragments the message must contain)
        ("name = \"unterminated\n".to_string(), vec!["line 1"]),
        (
            profile_toml("max_watts = 3", ""),
            vec!["max_watts", "unknown field"],
        ),
        (
            base.replace("dtype = \"int8\"", "dtype = \"int4\""),
            vec!["dtype", "int4", "int8", "float32"],
        ),
        (
            profile_toml("max_ram_bytes = 0", ""),
            vec!["budgets.max_ram_bytes = 0", "above 0"],
        ),
        (
            profile_toml("max_parameters = -5", ""),
            vec!["budgets.max_parameters = -5", "negative"],
        ),
        (
            profile_toml("max_energy_uj_per_word = -1.5", ""),
            vec!["budgets.max_energy_uj_per_word = -1.5"],
        ),
        (
            profile_toml("max_ram_bytes = 1073741824", ""),
            vec!["max_ram_bytes", "device.ram_bytes = 536870912"],
        ),
        (
            base.replace("cache_bytes = 524288", "cache_bytes = -1"),
            vec!["device.cache_bytes = -1"],
        ),
        (
            profile_toml("", "[energy]\nf32_add_pj = 0"),
            vec!["energy.f32_add_pj = 0"],
        ),
        (
            base.replace("[budgets]", "[budgets]\nmax_model_bytes = 1.5"),
            vec!["max_model_bytes", "line"],
        ),
        (
            base.replace(
                "recognizer_ms_per_word = 200",
                "recognizer_ms_per_word = -0.5",
            ),
            vec!["budgets.recognizer_ms_per_word = -0.5", "0 or more"],
        ),
        (
            profile_toml(
                "",
                "[energy]\nsram = [{ capacity_bytes = 32768, read_pj_per_64bit = 20.0 }, \
                 { capacity_bytes = 8192, read_pj_per_64bit = 10.0 }]",
            ),
            vec!["energy.sram[1].capacity_bytes = 8192", "smallest first"],
        ),
    ];
    for (text, fragments) in cases {
        let (path, err) = load_text(&text);
        let message = err.to_string();
        assert!(
            message.contains(&path),
            "message lacks the file {path}: {message}"
        );
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "message lacks {fragment:?}: {message}"
            );
        }
    }
}

#[test]
fn duplicate_measured_entry_rejected() {
    let entry = "[[latency.measured]]\nhidden_size = 8\nnum_nodes = 1\ndtype = \"int8\"\nus_per_word = 250.0\n";
    let (_, err) = load_text(&profile_toml("", &entry.repeat(2)));
    let message = err.to_string();
    assert!(message.contains("latency.measured[1]"), "{message}");
    assert!(message.contains("latency.measured[0]"), "{message}");
}

#[test]
fn missing_profile_file_named() {
    let err = Profile::load(Path::new("/nonexistent/board.toml")).unwrap_err();
    assert!(matches!(err, ProfileError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/board.toml"), "{err}");
}

#[test]
fn shipped_profiles_load() {
    let pi4 = Profile::load(&shipped_profile("raspberry-pi-4.toml")).unwrap();
    let zero = Profile::load(&shipped_profile("raspberry-pi-zero-2w.toml")).unwrap();
    assert_eq!(pi4.name, "raspberry-pi-4");
    assert_eq!(zero.name, "raspberry-pi-zero-2w");
    assert_eq!(pi4.budgets.latency_ms_per_word(), 40.0);
    assert_eq!(zero.budgets.latency_ms_per_word(), 20.0);
    assert!(zero.budgets.max_parameters < pi4.budgets.max_parameters);
    assert!(zero.budgets.max_ram_bytes < pi4.budgets.max_ram_bytes);

    let on_pi4 = estimate(&reference_model(), &pi4);
    assert!(
        on_pi4.all_met(),
        "the reference model must fit the Pi 4:\n{on_pi4}"
    );

    let on_zero = estimate(&reference_model(), &zero);
    let parameters = on_zero
        .checks
        .iter()
        .find(|c| c.name == "parameters")
        .unwrap();
    assert!(
        !parameters.met,
        "1486608 parameters exceed the Zero 2 W's 1000000"
    );
}

#[test]
fn report_display_aligns_columns() {
    let mut profile = test_profile(Dtype::Int8);
    profile.budgets.max_parameters = Some(1_000_000);
    let table = estimate(&reference_model(), &profile).to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("test-board at int8"), "{table}");
    assert!(lines[0].contains("DRAM"), "{table}");
    assert!(lines[0].contains("latency estimate"), "{table}");

    let header = lines[1];
    let value_end = header.find("value").unwrap() + "value".len();
    let parameters = lines.iter().find(|l| l.starts_with("parameters")).unwrap();
    assert!(parameters.contains("1486608"), "{table}");
    assert!(parameters.ends_with("no"), "{table}");
    assert_eq!(
        parameters.find("1486608").unwrap() + "1486608".len(),
        value_end,
        "{table}"
    );
    let latency = lines.iter().find(|l| l.starts_with("latency")).unwrap();
    assert!(latency.contains("2.265"), "{table}");
    assert!(latency.ends_with("yes"), "{table}");
    let macs = lines.iter().find(|l| l.starts_with("MACs")).unwrap();
    assert!(macs.ends_with('-'), "{table}");
}

#[test]
fn model_bytes_float32_is_four_per_parameter() {
    for tied in [true, false] {
        let model = arch(1000, 32, Tanh, &[(0, Relu), (0, Identity)], tied);
        let expected = 4 * model.num_parameters() as u64;
        assert_eq!(
            cost::model_bytes(&model, Dtype::Float32),
            expected,
            "tied = {tied}"
        );
    }
}
