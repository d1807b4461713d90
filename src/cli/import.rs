//! `negotium import`: a Genius XML / GeniusWeb JSON folder (or a scenario
//! TOML file) written as scenario TOML, checked by reading it back.

use std::path::PathBuf;

use super::CliError;
use crate::import::toml_out::{ExportOptions, check_round_trip, to_toml};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A folder holding a Genius XML or GeniusWeb JSON domain and its profiles
    /// (or a scenario TOML file).
    path: PathBuf,
    /// Where to write the scenario TOML; standard output without it.
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Write weights that do not sum to 1 divided by their sum (noted in a
    /// comment) instead of refusing: scenario TOML requires weights summing to 1.
    #[arg(long)]
    renormalize_weights: bool,
}

pub fn import(args: ImportArgs) -> Result<(), CliError> {
    // Weights that miss 1 are either refused by `to_toml` (which says so) or
    // renormalised: one message each, never "loaded as written".
    let (scenario, sums) =
        crate::import::load_noting_weights(&args.path).map_err(|e| CliError::Input(e.to_string()))?;
    if args.renormalize_weights {
        for w in &sums {
            eprintln!("note: {w}; written divided by their sum (--renormalize-weights)");
        }
    }
    let opts =
        ExportOptions { renormalize_weights: args.renormalize_weights, source: Some(args.path.display().to_string()) };
    let text = to_toml(&scenario, &opts)
        .map_err(|e| CliError::Input(format!("{}: cannot write as scenario TOML: {e}", args.path.display())))?;
    let label = args.out.as_ref().map_or("<stdout>".to_string(), |p| p.display().to_string());
    check_round_trip(&scenario, &text, &label)
        .map_err(|e| CliError::Failure(anyhow::anyhow!("{}: the export is not exact: {e}", args.path.display())))?;
    match &args.out {
        Some(out) => {
            std::fs::write(out, &text)
                .map_err(|e| CliError::Failure(anyhow::anyhow!("cannot write {}: {e}", out.display())))?;
            let names: Vec<&str> = scenario.parties.iter().map(|p| p.name.as_str()).collect();
            outln!(
                "wrote {}: {} — {} issues, {} outcomes, parties {}",
                out.display(),
                scenario.name,
                scenario.domain.issues.len(),
                scenario.domain.cardinality(),
                names.join(", ")
            );
        }
        None => crate::cli::write_out(format_args!("{text}")),
    }
    Ok(())
}
