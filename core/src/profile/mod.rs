//! Device profiles: facts about a target board, the budgets a model must meet there, and the
//! energy and latency figures that `crate::cost` uses, read from a TOML file.
//!
//! `Profile::load` rejects an invalid profile with an error that names the file, the key and
//! the value. Every integer in a profile is a count or a size, so a negative integer is
//! rejected before the typed parse, while the key is still known.

use std::fmt;

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

mod load;

pub use load::ProfileError;
