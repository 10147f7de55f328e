//! Writes a copy of a device profile with measured latencies and refitted rates. The copy
//! keeps the base file's other keys and comments, so each budget keeps its reason.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use edgenas_core::Profile;
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

use super::{CalibrateError, Calibration, Settings};

/// Returns the text of `base` with `[latency]` replaced by the calibration, after a header
/// that names the tool, the date, the CPU and the settings. The result is checked with
/// `Profile::parse` before it is returned.
pub fn profile_text(
    base_text: &str,
    base_path: &Path,
    calibration: &Calibration,
    settings: &Settings,
) -> Result<String, CalibrateError> {
    let mut document: DocumentMut =
        base_text
            .parse()
            .map_err(|e: toml_edit::TomlError| CalibrateError::BaseProfileSyntax {
                path: base_path.to_path_buf(),
                message: e.to_string(),
            })?;
    let latency = document
        .get_mut("latency")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| CalibrateError::BaseProfileSyntax {
            path: base_path.to_path_buf(),
            message: "it has no [latency] table".to_string(),
        })?;
    update_latency(latency, calibration);
    // The Raspberry Pi profile ends with an example `[[latency.measured]]` entry in comments.
    // It would now follow the real entries, so such closing comments are dropped.
    if document.trailing().as_str().is_some_and(|t| t.contains("latency.measured")) {
        document.set_trailing("");
    }
    let text = format!("{}{document}", header(base_path, settings));
    Profile::parse(&text, "the calibrated profile").map_err(|source| {
        CalibrateError::InvalidResult {
            message: source.to_string(),
        }
    })?;
    Ok(text)
}

fn update_latency(latency: &mut Table, calibration: &Calibration) {
    let fit = &calibration.fit;
    latency.decor_mut().set_prefix(format!(
        "\n# Fitted to the {} measurements below by least squares on the relative error, with no\n\
         # negative value. A rate that no measurement determines keeps the base profile's value.\n",
        fit.points
    ));
    let rates = [
        ("f32_macs_per_second", fit.f32_macs_per_second),
        ("int8_macs_per_second", fit.int8_macs_per_second),
    ];
    for (key, rate) in rates {
        let comment = match rate {
            Some(rate) => {
                latency[key] = value(rate.round());
                format!("  # fitted: {:.3} GMAC/s", rate / 1e9)
            }
            None => "  # kept from the base profile: the measurements did not determine it".to_string(),
        };
        if let Some(item) = latency[key].as_value_mut() {
            item.decor_mut().set_suffix(comment);
        }
    }
    latency["overhead_us_per_word"] = value(round_to_tenth(fit.overhead_us_per_word));
    if let Some(item) = latency["overhead_us_per_word"].as_value_mut() {
        item.decor_mut().set_suffix("  # fitted");
    }

    let mut entries = ArrayOfTables::new();
    for m in &calibration.measurements {
        let mut entry = Table::new();
        entry["hidden_size"] = value(m.hidden_size as i64);
        entry["num_nodes"] = value(m.num_nodes as i64);
        entry["vocab_size"] = value(m.vocab_size as i64);
        entry["dtype"] = value(m.format.dtype().name());
        entry["us_per_word"] = value(round_to_tenth(m.us_per_word));
        if let Some(item) = entry["us_per_word"].as_value_mut() {
            item.decor_mut()
                .set_suffix(format!("  # {}, median of {} words", m.format.name(), calibration.words));
        }
        entries.push(entry);
    }
    latency.remove("measured");
    latency.insert("measured", Item::ArrayOfTables(entries));
}

/// Rounds to one decimal. Dividing by 10, not multiplying by 0.1, gives the double nearest
/// the decimal, so TOML writes it without a long tail of digits.
fn round_to_tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Returns the comment block that opens the calibrated profile.
fn header(base_path: &Path, settings: &Settings) -> String {
    let mut lines = vec![
        format!(
            "# Measured by `edgenas-runtime calibrate` {} on {} ({}), one tract thread.",
            env!("CARGO_PKG_VERSION"),
            cpu_model(),
            std::env::consts::ARCH
        ),
        format!("# Date: {} (UTC).", utc_now()),
        format!(
            "# Chain cells with random weights (seed {}), int8 as {}.",
            settings.seed,
            settings.int8_format.name()
        ),
        format!(
            "# Each time is the median of {} words after {} warm-up words.",
            settings.words,
            settings.warm_up_words()
        ),
        format!("# Copied from {}, with [latency] replaced.", base_path.display()),
    ];
    lines.push(String::new());
    lines.join("\n") + "\n"
}

/// Returns the CPU model from `/proc/cpuinfo`: `model name` on x86-64, `Model` (the board) or
/// `Hardware` on Arm boards such as the Raspberry Pi, whose `/proc/cpuinfo` has no
/// `model name`.
pub fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "Model", "Hardware"] {
        let found = text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == key).then(|| value.trim().to_string())
        });
        if let Some(found) = found.filter(|v| !v.is_empty()) {
            return found;
        }
    }
    "unknown CPU".to_string()
}

/// Returns the current UTC time as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date. The count is shifted to
/// start on 0000-03-01, so the leap day ends each year, and split into 400-year eras of
/// 146,097 days.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_from_days_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_089), (2025, 1, 1));
    }
}
