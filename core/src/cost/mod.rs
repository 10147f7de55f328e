//! Analytic cost model: size, RAM, arithmetic, energy and latency per word of an architecture
//! on a device profile, checked against the profile's budgets.
//!
//! Every matrix has `H` columns, stored in PyTorch's `[out, in]` layout: the embedding
//! (`V` rows), an untied decoder (`V` rows), node 0's two `2H`-row matrices (one for `x_t`,
//! one for `h_{t-1}`) and one `2H`-row matrix per later node. The decoder bias (`V`) is the
//! only bias.
//!
//! Assumed int8 scheme: int8 matrix elements, one float32 scale per output row of every
//! matrix, and the decoder bias kept in float32. Int8 MACs multiply int8 weights by an int8
//! copy of the input vector.
//!
//! Element-wise work stays float32 at every deploy dtype. Counted per word, with `k` loose
//! ends and `V` the vocabulary size:
//!
//! | step                      | adds per element      | mults per element | elements        |
//! |---------------------------|-----------------------|-------------------|-----------------|
//! | gate sigmoid              | 1                     | 1                 | `H` per node    |
//! | activation tanh           | 2                     | 2                 | `H` per node    |
//! | activation sigmoid        | 1                     | 1                 | `H` per node    |
//! | activation relu           | 1 (compare)           | 0                 | `H` per node    |
//! | activation identity       | 0                     | 0                 | `H` per node    |
//! | highway `c*a + (1-c)*s`   | 2 (one is `1-c`)      | 2                 | `H` per node    |
//! | mean of loose ends, k > 1 | k - 1                 | 1 (scale by 1/k)  | `H`             |
//! | decoder bias              | 1                     | 0                 | `V`             |
//! | softmax                   | 3 (max, x - max, sum) | 1 (times 1/sum)   | `V`             |
//! | int8 input quantization   | 1 (max-abs compare)   | 1                 | `H` per product |
//! | int8 output rescale       | 0                     | 1                 | each output row |
//!
//! The Horowitz table has no figure for exp or division, so an exp is not charged and a
//! division counts as one mult, which undercounts both. Sigmoid is `1 / (1 + exp(-z))`, and
//! tanh is `(1 - e) / (1 + e)` with `e = exp(-2z)`. Node 0's second matrix product
//! accumulates into the first, so it needs no extra adds. A cell with one loose end uses that
//! node as its output and needs no mean.


use serde::Serialize;

use crate::arch::{Activation, Arch};
use crate::profile::{Dtype, EnergyTable, Profile};

/// Bytes of one float32 value.
const F32_BYTES: u64 = 4;

/// Float32 element-wise operations per word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ElementwiseOps {
    pub adds: u64,
    pub mults: u64,
}

/// Memory the weights are read from each word, with its read energy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum WeightMemory {
    /// On-chip cache, charged at the SRAM tier of this capacity.
    Sram {
        capacity_bytes: u64,
        read_pj_per_64bit: f64,
    },
    /// Main memory, read again every word.
    Dram { read_pj_per_64bit: f64 },
}

impl WeightMemory {
    pub fn read_pj_per_64bit(&self) -> f64 {
        match *self {
            WeightMemory::Sram {
                read_pj_per_64bit, ..
            }
            | WeightMemory::Dram { read_pj_per_64bit } => read_pj_per_64bit,
        }
    }
}

/// Whether a latency comes from a measurement on the board or from the throughput estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencySource {
    Measured,
    Estimate,
}

/// One cost compared with its budget. `met` is true when `value <= budget`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetCheck {
    pub name: &'static str,
    pub value: f64,
    pub budget: f64,
    pub unit: &'static str,
    pub met: bool,
}

/// Costs of one architecture on one device profile, per word where the name says so.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostReport {
    /// Name of the profile the costs are for.
    pub profile: String,
    /// Deploy dtype from the profile, used for `model_bytes`, `ram_bytes`, energy and latency.
    pub dtype: Dtype,
    pub parameters: u64,
    pub model_bytes_float32: u64,
    pub model_bytes_int8: u64,
    /// Model bytes at the deploy dtype.
    pub model_bytes: u64,
    /// Bytes of float32 activations the runtime keeps while it runs.
    pub working_set_bytes: u64,
    /// Model bytes + working set + the profile's runtime overhead.
    pub ram_bytes: u64,
    pub macs_per_word: u64,
    pub elementwise_ops_per_word: ElementwiseOps,
    /// Bytes of weights, scales and bias at the deploy dtype read for each word.
    pub weight_bytes_read_per_word: u64,
    pub weight_memory: WeightMemory,
    /// MACs and element-wise operations, in microjoules per word.
    pub arithmetic_uj_per_word: f64,
    /// Weight reads, in microjoules per word.
    pub memory_uj_per_word: f64,
    pub energy_uj_per_word: f64,
    pub latency_ms_per_word: f64,
    pub latency_source: LatencySource,
    /// One check per budget in the profile. Latency is always checked.
    pub checks: Vec<BudgetCheck>,
}

impl CostReport {
    /// Returns whether every budget is met.
    pub fn all_met(&self) -> bool {
        self.checks.iter().all(|c| c.met)
    }
}

/// Bytes of one stored matrix row of `cols` elements, with its float32 scale at int8.
fn row_bytes(cols: u64, dtype: Dtype) -> u64 {
    let scale = if dtype == Dtype::Int8 { F32_BYTES } else { 0 };
    cols * dtype.bytes() + scale
}

/// Returns the matrix rows in the model, all of `H` columns: `V` (embedding) + `V` (untied
/// decoder) + `2H * (nodes + 1)`.
fn matrix_rows(arch: &Arch) -> u64 {
    let (v, h, n) = sizes(arch);
    let decoder = if arch.tie_weights { 0 } else { v };
    v + decoder + 2 * h * (n + 1)
}

fn sizes(arch: &Arch) -> (u64, u64, u64) {
    (
        arch.vocab_size as u64,
        arch.hidden_size as u64,
        arch.num_nodes() as u64,
    )
}

/// Returns the bytes of all weights at `dtype`: every matrix row plus the float32 decoder
/// bias. At float32 this is `4 * parameters`.
pub fn model_bytes(arch: &Arch, dtype: Dtype) -> u64 {
    let (v, h, _) = sizes(arch);
    matrix_rows(arch) * row_bytes(h, dtype) + v * F32_BYTES
}

/// Returns the bytes of weights read per word at `dtype`. With tied weights the decoder reads
/// the whole `V x H` table, which includes the looked-up row. Untied, only one embedding row
/// is read besides the decoder. Every node matrix and the decoder bias are read every word.
pub fn weight_bytes_read_per_word(arch: &Arch, dtype: Dtype) -> u64 {
    let (v, h, _) = sizes(arch);
    let unread_embedding_rows = if arch.tie_weights { 0 } else { v - 1 };
    (matrix_rows(arch) - unread_embedding_rows) * row_bytes(h, dtype) + v * F32_BYTES
}

/// Returns the multiply-accumulates per word: `2 * (2H * H)` for node 0, `2H * H` for each
/// later node and `V * H` for the decoder. The embedding lookup needs none.
pub fn macs_per_word(arch: &Arch) -> u64 {
    let (v, h, n) = sizes(arch);
    2 * h * h * (n + 1) + v * h
}

/// Returns the float32 bytes of the working set: state `H`, per node a pre-activation `2H`
/// and an output `H`, the cell output `H`, logits `V` and probabilities `V`.
///
/// NOTE: smaller scratch buffers (the dequantized embedding row, int8 copies of matrix inputs)
/// are assumed to fit in the profile's `runtime_overhead_bytes`.
pub fn working_set_bytes(arch: &Arch) -> u64 {
    let (v, h, n) = sizes(arch);
    F32_BYTES * (h + 3 * h * n + h + 2 * v)
}

/// Counts the float32 element-wise operations per word, as in the table in the module docs.
pub fn elementwise_ops_per_word(arch: &Arch, dtype: Dtype) -> ElementwiseOps {
    let (v, h, n) = sizes(arch);
    let mut adds = 0;
    let mut mults = 0;

    for node in &arch.nodes {
        let (activation_adds, activation_mults) = match node.activation {
            Activation::Tanh => (2, 2),
            Activation::Sigmoid => (1, 1),
            Activation::Relu => (1, 0),
            Activation::Identity => (0, 0),
        };
        // Gate sigmoid (1 add, 1 mult) and highway (2 adds, 2 mults) come with every node.
        adds += (3 + activation_adds) * h;
        mults += (3 + activation_mults) * h;
    }

    let loose_ends = arch.loose_ends().len() as u64;
    if loose_ends > 1 {
        adds += (loose_ends - 1) * h;
        mults += h;
    }

    // Decoder bias, then softmax.
    adds += v + 3 * v;
    mults += v;

    if dtype == Dtype::Int8 {
        // Matrix-vector products per word: two for node 0, one per later node, one decoder.
        let products = n + 2;
        adds += products * h;
        mults += products * h + 2 * h * (n + 1) + v;
    }
    ElementwiseOps { adds, mults }
}

/// Picks the memory the weights are read from. Weights whose per-word read bytes fit in
/// `cache_bytes` stay on chip and are charged at the smallest SRAM tier at least that large.
/// Weights that do not fit are read from DRAM every word.
///
/// NOTE: weights that fit a cache larger than the largest tier are charged at the largest
/// tier, which undercounts a cache of several MB.
pub fn weight_memory(read_bytes: u64, cache_bytes: u64, energy: &EnergyTable) -> WeightMemory {
    let dram = WeightMemory::Dram {
        read_pj_per_64bit: energy.dram_read_pj_per_64bit,
    };
    if read_bytes > cache_bytes {
        return dram;
    }
    let tier = energy
        .sram
        .iter()
        .find(|t| t.capacity_bytes >= read_bytes)
        .or(energy.sram.last());
    match tier {
        Some(t) => WeightMemory::Sram {
            capacity_bytes: t.capacity_bytes,
            read_pj_per_64bit: t.read_pj_per_64bit,
        },
        None => dram,
    }
}

/// Estimates every cost of `arch` on `profile` and checks each budget the profile sets.
///
/// Energy per word is `arithmetic + memory`, where arithmetic is `MACs * (mult + add at the
/// deploy dtype) + element-wise adds * f32 add + element-wise mults * f32 mult`, and memory is
/// `weight bytes read per word / 8 * energy of one 64-bit read` from `weight_memory`.
/// Expects a validated `arch` and `profile`, as `Arch::load` and `Profile::load` return them.
pub fn estimate(arch: &Arch, profile: &Profile) -> CostReport {
    let dtype = profile.deploy.dtype;
    let energy = &profile.energy;

    let parameters = arch.num_parameters() as u64;
    let model_bytes_at_dtype = model_bytes(arch, dtype);
    let working_set = working_set_bytes(arch);
    let ram_bytes = model_bytes_at_dtype + working_set + profile.deploy.runtime_overhead_bytes;

    let macs = macs_per_word(arch);
    let elementwise = elementwise_ops_per_word(arch, dtype);
    let read_bytes = weight_bytes_read_per_word(arch, dtype);
    let memory = weight_memory(read_bytes, profile.device.cache_bytes, energy);

    let arithmetic_pj = macs as f64 * energy.mac_pj(dtype)
        + elementwise.adds as f64 * energy.f32_add_pj
        + elementwise.mults as f64 * energy.f32_mult_pj;
    let memory_pj = read_bytes as f64 / 8.0 * memory.read_pj_per_64bit();
    let arithmetic_uj = arithmetic_pj / 1e6;
    let memory_uj = memory_pj / 1e6;
    let energy_uj = arithmetic_uj + memory_uj;

    let (latency_ms, latency_source) = latency_ms_per_word(arch, profile, macs, elementwise);

    let budgets = &profile.budgets;
    let mut checks = Vec::new();
    let mut check = |name, value: f64, budget: Option<f64>, unit| {
        if let Some(budget) = budget {
            let met = value <= budget;
            checks.push(BudgetCheck {
                name,
                value,
                budget,
                unit,
                met,
            });
        }
    };
    check(
        "parameters",
        parameters as f64,
        budgets.max_parameters.map(|b| b as f64),
        "",
    );
    check(
        "model size",
        model_bytes_at_dtype as f64,
        budgets.max_model_bytes.map(|b| b as f64),
        "bytes",
    );
    check(
        "RAM",
        ram_bytes as f64,
        budgets.max_ram_bytes.map(|b| b as f64),
        "bytes",
    );
    check(
        "latency",
        latency_ms,
        Some(budgets.latency_ms_per_word()),
        "ms/word",
    );
    check(
        "energy",
        energy_uj,
        budgets.max_energy_uj_per_word,
        "uJ/word",
    );

    CostReport {
        profile: profile.name.clone(),
        dtype,
        parameters,
        model_bytes_float32: model_bytes(arch, Dtype::Float32),
        model_bytes_int8: model_bytes(arch, Dtype::Int8),
        model_bytes: model_bytes_at_dtype,
        working_set_bytes: working_set,
        ram_bytes,
        macs_per_word: macs,
        elementwise_ops_per_word: elementwise,
        weight_bytes_read_per_word: read_bytes,
        weight_memory: memory,
        arithmetic_uj_per_word: arithmetic_uj,
        memory_uj_per_word: memory_uj,
        energy_uj_per_word: energy_uj,
        latency_ms_per_word: latency_ms,
        latency_source,
        checks,
    }
}

/// Returns the measured latency when the profile has one for this shape, else the estimate
/// `MACs / MAC rate at the dtype + element-wise ops / f32 MAC rate + overhead`.
fn latency_ms_per_word(
    arch: &Arch,
    profile: &Profile,
    macs: u64,
    elementwise: ElementwiseOps,
) -> (f64, LatencySource) {
    let dtype = profile.deploy.dtype;
    let model = &profile.latency;
    if let Some(m) = model.find_measured(arch, dtype) {
        return (m.us_per_word / 1e3, LatencySource::Measured);
    }
    let mac_rate = match dtype {
        Dtype::Int8 => model.int8_macs_per_second,
        Dtype::Float32 => model.f32_macs_per_second,
    };
    let elementwise_ops = (elementwise.adds + elementwise.mults) as f64;
    let seconds = macs as f64 / mac_rate + elementwise_ops / model.f32_macs_per_second;
    (
        seconds * 1e3 + model.overhead_us_per_word / 1e3,
        LatencySource::Estimate,
    )
}

mod report;
