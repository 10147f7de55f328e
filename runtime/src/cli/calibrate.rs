//! `edgenas-runtime calibrate`: measures the time per word on this device for a grid of cell
//! sizes and writes a device profile with the measurements and refitted rates.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgenas_core::{Dtype, Profile};
use edgenas_runtime::calibrate::{
    self, calibrate, check_out, estimated_us_per_word, parse_dtype, read_base_profile,
    Calibration, Grid, Measurement, Settings, WeightFormat,
};
use edgenas_runtime::locate::{default_file, DEFAULT_PROFILE};

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Profile file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Profile to copy every other setting from
    /// [default: profiles/raspberry-pi-4.toml, in the working folder or beside the binary]
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,

    /// Hidden sizes to measure, separated by commas
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "64,128,256")]
    pub hidden: Vec<usize>,

    /// Node counts to measure, separated by commas
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "1,4,8")]
    pub nodes: Vec<usize>,

    /// Vocabulary size of every measured model (Penn Treebank has 10000 words)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub vocab_size: usize,

    /// Weight dtypes to measure, separated by commas: f32, int8
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "f32,int8")]
    pub dtypes: Vec<String>,

    /// Int8 scheme measured for the int8 dtype: weights (the `edgenas export` default),
    /// dynamic or static
    #[arg(long, value_name = "SCHEME", default_value = "weights")]
    pub int8_scheme: WeightFormat,

    /// Words timed per grid point after the warm-up; the median is recorded
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub words: usize,

    /// Seed of the random weights and words
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let dtypes = args
        .dtypes
        .iter()
        .map(|text| parse_dtype(text))
        .collect::<Result<Vec<Dtype>, _>>()?;
    let grid = Grid {
        hidden_sizes: args.hidden.clone(),
        node_counts: args.nodes.clone(),
        vocab_size: args.vocab_size,
        dtypes,
    };
    let settings = Settings {
        words: args.words,
        seed: args.seed,
        int8_format: args.int8_scheme,
    };
    grid.validate()?;
    settings.validate()?;
    check_out(&args.out, args.force)?;
    let base = args.base.clone().unwrap_or_else(|| default_file(DEFAULT_PROFILE));
    let base_text = read_base_profile(&base)?;

    eprintln!(
        "calibrate: {} cells x {} dtypes on {}, {} words each after {} warm-up words",
        grid.cells().len(),
        grid.dtypes.len(),
        calibrate::cpu_model(),
        settings.words,
        settings.warm_up_words()
    );
    let calibration = calibrate(&grid, &settings, &mut |index, total, m| {
        eprintln!(
            "calibrate: [{index}/{total}] hidden {} nodes {} {}: {:.1} us/word",
            m.hidden_size,
            m.num_nodes,
            m.format.name(),
            m.us_per_word
        );
    })?;

    let text = calibrate::profile_text(&base_text, &base, &calibration, &settings)?;
    // Checked again because another process may have created the file while measuring.
    check_out(&args.out, args.force)?;
    calibrate::write_profile(&args.out, &text)?;
    let profile = Profile::parse(&text, &args.out.display().to_string())
        .context("failed to read back the calibrated profile")?;
    print_table(&calibration, &profile)?;
    eprintln!("calibrate: wrote {}", args.out.display());
    Ok(())
}

/// Prints one row per measurement with the time the fitted rates give, then the rates.
fn print_table(calibration: &Calibration, profile: &Profile) -> anyhow::Result<()> {
    println!(
        "{:>6} {:>5} {:>6} {:<13} {:>11} {:>12} {:>12} {:>7}",
        "hidden", "nodes", "vocab", "format", "MACs/word", "us/word", "fitted us", "error"
    );
    for m in &calibration.measurements {
        let fitted = estimated_us_per_word(profile, m)?;
        println!("{}", table_row(m, fitted));
    }
    let latency = &profile.latency;
    println!(
        "fitted: float32 {:.3} GMAC/s, int8 {:.3} GMAC/s, overhead {:.1} us/word",
        latency.f32_macs_per_second / 1e9,
        latency.int8_macs_per_second / 1e9,
        latency.overhead_us_per_word
    );
    Ok(())
}

fn table_row(m: &Measurement, fitted_us: f64) -> String {
    let error = (fitted_us - m.us_per_word) / m.us_per_word * 100.0;
    format!(
        "{:>6} {:>5} {:>6} {:<13} {:>11} {:>12.1} {:>12.1} {:>6.1}%",
        m.hidden_size,
        m.num_nodes,
        m.vocab_size,
        m.format.name(),
        m.macs_per_word,
        m.us_per_word,
        fitted_us,
        error
    )
}
