//! `negotium import` (being built; see issue 3).

use super::CliError;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Input path.
    path: std::path::PathBuf,
}

pub fn import(args: ImportArgs) -> Result<(), CliError> {
    Err(CliError::Input(format!("{}: `negotium import` is not implemented yet", args.path.display())))
}
