//! Reading and validating a profile file.

use std::path::Path;

use super::*;

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
