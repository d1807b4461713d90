//! `negotium plot` (being built; see issue 3).

use super::CliError;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// Input path.
    path: std::path::PathBuf,
}

pub fn plot(args: PlotArgs) -> Result<(), CliError> {
    Err(CliError::Input(format!("{}: `negotium plot` is not implemented yet", args.path.display())))
}
