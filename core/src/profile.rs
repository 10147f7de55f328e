//! Device profiles: facts about a target board, the budgets a model must meet there, and the
//! energy and latency figures that `crate::cost` uses, read from a TOML file.
//!
//! `Profile::load` rejects an invalid profile with an error that names the file, the key and
//! the value. Every integer in a profile is a count or a size, so a negative integer is
//! rejected before the typed parse, while the key is still known.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// A target board with its deploy settings, budgets, energy table and latency model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short identifier used in reports, such as `raspberry-pi-4`.
    pub name: String,
    /// One line on the board and the use the budgets are for.
    pub description: String,
    pub device: Device,
    pub deploy: Deploy,
    pub budgets: Budgets,
    /// Energy per operation. Each missing field takes its Horowitz (ISSCC 2014, 45 nm) value.
    #[serde(default)]
    pub energy: EnergyTable,
    pub latency: LatencyModel,
}

/// Facts about the board from its datasheet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// CPU core model, such as `Cortex-A72`.
    pub cpu: String,
    /// Number of CPU cores.
    pub cores: u32,
    /// CPU clock in MHz.
    pub clock_mhz: u32,
    /// Bytes of on-chip cache that weights can stay in between words (the shared L2 cache).
    pub cache_bytes: u64,
    /// Bytes of main memory (DRAM) on the board.
    pub ram_bytes: u64,
}

/// Storage type of the weights on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Int8,
    Float32,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Int8 => "int8",
            Dtype::Float32 => "float32",
        }
    }

    /// Bytes per weight element, without any quantization scales.
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::Int8 => 1,
            Dtype::Float32 => 4,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Deploy settings: the weight dtype and the runtime's RAM overhead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Weight dtype the model ships in, at which every budget is checked.
    pub dtype: Dtype,
    /// Bytes of RAM the runtime needs besides weights and the working set (binary, allocator,
    /// I/O buffers). An estimate until measured on the board.
    pub runtime_overhead_bytes: u64,
}

/// Limits a model must meet on the device. An absent `max_*` key leaves that cost unbudgeted,
/// except latency, whose budget is always present (given or derived).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Maximum number of trainable parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parameters: Option<u64>,
    /// Maximum size in bytes of the weights on storage (flash or SD card) at the deploy dtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_bytes: Option<u64>,
    /// Maximum RAM in bytes for weights, working set and runtime overhead together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ram_bytes: Option<u64>,
    /// Maximum predictor latency in ms per word. Defaults to, and may not exceed, the time
    /// left per word (`derived_latency_ms_per_word`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms_per_word: Option<f64>,
    /// Maximum energy in microjoules per word for arithmetic and weight reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_energy_uj_per_word: Option<f64>,
    /// Worst-case speaking rate in words per minute that the predictor must keep up with.
    pub words_per_minute: f64,
    /// Milliseconds per word that the speech recognizer takes from the time per word.
    pub recognizer_ms_per_word: f64,
}

impl Budgets {
    /// Returns the ms per word left to the predictor: `60000 / words_per_minute -
    /// recognizer_ms_per_word`.
    pub fn derived_latency_ms_per_word(&self) -> f64 {
        60_000.0 / self.words_per_minute - self.recognizer_ms_per_word
    }

    /// Returns the latency budget in ms per word: `max_latency_ms_per_word` when given, else
    /// the derived budget.
    pub fn latency_ms_per_word(&self) -> f64 {
        self.max_latency_ms_per_word
            .unwrap_or_else(|| self.derived_latency_ms_per_word())
    }
}

/// Energy per operation and per memory read in picojoules.
///
/// The defaults are Horowitz, "Computing's energy problem (and what we can do about it)",
/// ISSCC 2014, for a 45 nm process. Real boards differ in process node and voltage, so the
/// figures rank architectures rather than predict a board's power draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnergyTable {
    /// Energy of one float32 add in pJ (Horowitz: 0.9).
    pub f32_add_pj: f64,
    /// Energy of one float32 multiply in pJ (Horowitz: 3.7).
    pub f32_mult_pj: f64,
    /// Energy of one int8 add in pJ (Horowitz: 0.03).
    ///
    /// NOTE: int8 kernels accumulate in int32, which the same table puts at 0.1 pJ per add.
    /// Set this field to 0.1 to charge int32 accumulation.
    pub int8_add_pj: f64,
    /// Energy of one int8 multiply in pJ (Horowitz: 0.2).
    pub int8_mult_pj: f64,
    /// On-chip SRAM read energies by capacity, smallest first.
    pub sram: Vec<SramTier>,
    /// Energy of one 64-bit DRAM read in pJ. Horowitz gives 1300 to 2600, and the default is 2000.
    pub dram_read_pj_per_64bit: f64,
}

/// Read energy of an SRAM of a given capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramTier {
    /// SRAM capacity in bytes.
    pub capacity_bytes: u64,
    /// Energy of one 64-bit read in pJ.
    pub read_pj_per_64bit: f64,
}

impl Default for EnergyTable {
    fn default() -> Self {
        let tier = |capacity_bytes, read_pj_per_64bit| SramTier {
            capacity_bytes,
            read_pj_per_64bit,
        };
        EnergyTable {
            f32_add_pj: 0.9,
            f32_mult_pj: 3.7,
            int8_add_pj: 0.03,
            int8_mult_pj: 0.2,
            sram: vec![
                tier(8 << 10, 10.0),
                tier(32 << 10, 20.0),
                tier(1 << 20, 100.0),
            ],
            dram_read_pj_per_64bit: 2000.0,
        }
    }
}

impl EnergyTable {
    /// Returns the energy in pJ of one multiply and one add at `dtype`.
    pub fn mac_pj(&self, dtype: Dtype) -> f64 {
        match dtype {
            Dtype::Int8 => self.int8_mult_pj + self.int8_add_pj,
            Dtype::Float32 => self.f32_mult_pj + self.f32_add_pj,
        }
    }
}

/// Latency per word: a throughput estimate, replaced by a measurement where one matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyModel {
    /// Estimated float32 multiply-accumulates per second that the runtime sustains. Element-wise
    /// operations are charged at this rate too, one operation per MAC slot.
    pub f32_macs_per_second: f64,
    /// Estimated int8 multiply-accumulates per second that the runtime sustains.
    pub int8_macs_per_second: f64,
    /// Estimated fixed cost per word in microseconds (embedding lookup, calls, bookkeeping).
    pub overhead_us_per_word: f64,
    /// Latencies measured on the board, used instead of the estimate where one matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measured: Vec<MeasuredLatency>,
}

/// One latency measured on the board for a model shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredLatency {
    pub hidden_size: usize,
    pub num_nodes: usize,
    /// Vocabulary size of the measured model. An entry without it matches any vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    pub dtype: Dtype,
    /// Measured time per word in microseconds.
    pub us_per_word: f64,
}

impl LatencyModel {
    /// Finds the measurement for `arch` at `dtype`. An entry that names the vocabulary size
    /// wins over one that does not.
    pub fn find_measured(&self, arch: &Arch, dtype: Dtype) -> Option<&MeasuredLatency> {
        let shape_matches = |m: &&MeasuredLatency| {
            m.hidden_size == arch.hidden_size && m.num_nodes == arch.num_nodes() && m.dtype == dtype
        };
        let exact = self
            .measured
            .iter()
            .filter(shape_matches)
            .find(|m| m.vocab_size == Some(arch.vocab_size));
        exact.or_else(|| {
            self.measured
                .iter()
                .filter(shape_matches)
                .find(|m| m.vocab_size.is_none())
        })
    }
}

/// A device profile that cannot be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read device profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid device profile {path}: {source}")]
    Toml {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid device profile {path}: {key} = {value} {problem}")]
    Value {
        path: String,
        key: String,
        value: String,
        problem: String,
    },
    #[error(
        "invalid device profile {path}: budgets.max_latency_ms_per_word = {budget} is above the \
         {derived} ms per word left by words_per_minute = {words_per_minute} and \
         recognizer_ms_per_word = {recognizer_ms_per_word} (60000 / {words_per_minute} - \
         {recognizer_ms_per_word}); lower it to {derived} or less, or remove it to use {derived}"
    )]
    LatencyAboveDerived {
        path: String,
        budget: f64,
        derived: f64,
        words_per_minute: f64,
        recognizer_ms_per_word: f64,
    },
}

impl Profile {
    /// Reads and validates a device profile.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let display_path = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: display_path.clone(),
            source,
        })?;
        Profile::parse(&text, &display_path)
    }

    /// Parses and validates profile TOML. `origin` names the source (a path) in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let toml_error = |source| ProfileError::Toml {
            path: origin.to_string(),
            source,
        };
        let raw: toml::Table = toml::from_str(text).map_err(toml_error)?;
        reject_negative_integers(&toml::Value::Table(raw), "", origin)?;
        let profile: Profile = toml::from_str(text).map_err(toml_error)?;
        profile.validate(origin)?;
        Ok(profile)
    }

    /// Checks every value that the types allow but the cost model cannot use, such as a zero
    /// budget or a latency budget above the time left per word.
    pub fn validate(&self, origin: &str) -> Result<(), ProfileError> {
        let check = Checker { origin };
        if self.name.trim().is_empty() {
            return Err(check.invalid("name", "\"\"", "is empty; give a short profile name"));
        }
        check.above_zero("device.cores", f64::from(self.device.cores))?;
        check.above_zero("device.clock_mhz", f64::from(self.device.clock_mhz))?;
        check.above_zero("device.ram_bytes", self.device.ram_bytes as f64)?;

        validate_budgets(&self.budgets, &self.device, &check)?;

        let e = &self.energy;
        check.above_zero("energy.f32_add_pj", e.f32_add_pj)?;
        check.above_zero("energy.f32_mult_pj", e.f32_mult_pj)?;
        check.above_zero("energy.int8_add_pj", e.int8_add_pj)?;
        check.above_zero("energy.int8_mult_pj", e.int8_mult_pj)?;
        check.above_zero("energy.dram_read_pj_per_64bit", e.dram_read_pj_per_64bit)?;
        if e.sram.is_empty() {
            return Err(check.invalid("energy.sram", "[]", "is empty; list at least one tier"));
        }
        for (i, tier) in e.sram.iter().enumerate() {
            let capacity_key = format!("energy.sram[{i}].capacity_bytes");
            check.above_zero(&capacity_key, tier.capacity_bytes as f64)?;
            check.above_zero(
                &format!("energy.sram[{i}].read_pj_per_64bit"),
                tier.read_pj_per_64bit,
            )?;
            if i > 0 && tier.capacity_bytes <= e.sram[i - 1].capacity_bytes {
                let problem = "is not above the previous tier's; list SRAM tiers smallest first";
                return Err(check.invalid(capacity_key, tier.capacity_bytes, problem));
            }
        }

        let l = &self.latency;
        check.above_zero("latency.f32_macs_per_second", l.f32_macs_per_second)?;
        check.above_zero("latency.int8_macs_per_second", l.int8_macs_per_second)?;
        check.zero_or_more("latency.overhead_us_per_word", l.overhead_us_per_word)?;
        for (i, m) in l.measured.iter().enumerate() {
            let key = |field: &str| format!("latency.measured[{i}].{field}");
            check.above_zero(&key("hidden_size"), m.hidden_size as f64)?;
            check.above_zero(&key("num_nodes"), m.num_nodes as f64)?;
            check.above_zero(&key("us_per_word"), m.us_per_word)?;
            if let Some(v) = m.vocab_size {
                check.above_zero(&key("vocab_size"), v as f64)?;
            }
            let same_shape = |o: &MeasuredLatency| {
                (o.hidden_size, o.num_nodes, o.vocab_size, o.dtype)
                    == (m.hidden_size, m.num_nodes, m.vocab_size, m.dtype)
            };
            if let Some(first) = l.measured[..i].iter().position(same_shape) {
                let shape = format!(
                    "{{ hidden_size = {}, num_nodes = {} }}",
                    m.hidden_size, m.num_nodes
                );
                let problem =
                    format!("repeats the shape and dtype of latency.measured[{first}]; keep one");
                return Err(check.invalid(format!("latency.measured[{i}]"), shape, problem));
            }
        }
        Ok(())
    }
}

/// Builds `ProfileError::Value` errors that name one profile file.
struct Checker<'a> {
    origin: &'a str,
}

impl Checker<'_> {
    fn invalid(
        &self,
        key: impl Into<String>,
        value: impl fmt::Display,
        problem: impl Into<String>,
    ) -> ProfileError {
        ProfileError::Value {
            path: self.origin.to_string(),
            key: key.into(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }

    fn above_zero(&self, key: &str, value: f64) -> Result<(), ProfileError> {
        if value.is_finite() && value > 0.0 {
            return Ok(());
        }
        Err(self.invalid(key, value, "is invalid; give a finite number above 0"))
    }

    fn zero_or_more(&self, key: &str, value: f64) -> Result<(), ProfileError> {
        if value.is_finite() && value >= 0.0 {
            return Ok(());
        }
        Err(self.invalid(key, value, "is invalid; give a finite number, 0 or more"))
    }
}

/// Checks that every budget is above 0, that the RAM budget fits the board and that the
/// latency budget fits the time left per word.
fn validate_budgets(b: &Budgets, device: &Device, check: &Checker) -> Result<(), ProfileError> {
    let optional = [
        ("max_parameters", b.max_parameters.map(|v| v as f64)),
        ("max_model_bytes", b.max_model_bytes.map(|v| v as f64)),
        ("max_ram_bytes", b.max_ram_bytes.map(|v| v as f64)),
        ("max_latency_ms_per_word", b.max_latency_ms_per_word),
        ("max_energy_uj_per_word", b.max_energy_uj_per_word),
    ];
    for (key, value) in optional {
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
            let problem = "is invalid; a budget must be above 0, so give a larger number or \
                           remove the key to leave this cost without a budget";
            return Err(check.invalid(format!("budgets.{key}"), v, problem));
        }
    }
    check.above_zero("budgets.words_per_minute", b.words_per_minute)?;
    check.zero_or_more("budgets.recognizer_ms_per_word", b.recognizer_ms_per_word)?;
    if let Some(max) = b.max_ram_bytes.filter(|&max| max > device.ram_bytes) {
        let problem = format!(
            "is above device.ram_bytes = {}; lower it to the board's RAM or less",
            device.ram_bytes
        );
        return Err(check.invalid("budgets.max_ram_bytes", max, problem));
    }

    let derived = b.derived_latency_ms_per_word();
    if derived <= 0.0 {
        let problem = format!(
            "leaves no time for the predictor at words_per_minute = {} ({} ms per word); \
             lower recognizer_ms_per_word or words_per_minute",
            b.words_per_minute,
            60_000.0 / b.words_per_minute
        );
        let key = "budgets.recognizer_ms_per_word";
        return Err(check.invalid(key, b.recognizer_ms_per_word, problem));
    }
    if let Some(budget) = b.max_latency_ms_per_word.filter(|&budget| budget > derived) {
        return Err(ProfileError::LatencyAboveDerived {
            path: check.origin.to_string(),
            budget,
            derived,
            words_per_minute: b.words_per_minute,
            recognizer_ms_per_word: b.recognizer_ms_per_word,
        });
    }
    Ok(())
}

/// Rejects any negative integer in `value`, naming its dotted key (`key` is empty at the top
/// level). The typed profile stores counts and sizes unsigned, and a failed unsigned parse
/// would not name the key.
fn reject_negative_integers(
    value: &toml::Value,
    key: &str,
    origin: &str,
) -> Result<(), ProfileError> {
    match value {
        toml::Value::Integer(i) if *i < 0 => {
            let problem = "is negative; counts and sizes must be 0 or more";
            Err(Checker { origin }.invalid(key, i, problem))
        }
        toml::Value::Table(table) => {
            for (name, inner) in table {
                let inner_key = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                reject_negative_integers(inner, &inner_key, origin)?;
            }
            Ok(())
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                reject_negative_integers(item, &format!("{key}[{i}]"), origin)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
