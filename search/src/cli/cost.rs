//! `edgenas cost`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgenas_core::{cost, profile::Profile, Arch};

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Architecture file (arch.json) to cost.
    #[arg(long, value_name = "FILE")]
    arch: PathBuf,

    /// Device profile (TOML) with the budgets and cost figures, e.g. profiles/raspberry-pi-4.toml.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,

    /// Exit with status 3 when any budget is not met.
    #[arg(long)]
    strict: bool,
}

/// Exit status of `edgenas cost --strict` when a budget is not met.
pub const OVER_BUDGET_EXIT: u8 = 3;

/// Prints the cost report; returns whether every budget is met or `--strict` is off.
pub fn cost(args: CostArgs) -> anyhow::Result<bool> {
    super::require_file(&args.arch, "architecture file")?;
    super::require_file(&args.profile, "device profile")?;
    let arch = Arch::load(&args.arch)?;
    let profile = Profile::load(&args.profile)?;
    let report = cost::estimate(&arch, &profile);
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("serializing the cost report")?;
        println!("{text}");
    } else {
        print!("{report}");
    }
    if !report.all_met() {
        tracing::warn!(
            "{} exceeds at least one budget of {}",
            arch.summary(),
            args.profile.display()
        );
    }
    Ok(report.all_met() || !args.strict)
}
