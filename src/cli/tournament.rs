//! `negotium tournament` (being built; see issue 3).

use super::CliError;

#[derive(clap::Args)]
pub struct TournamentArgs {
    /// Input path.
    path: std::path::PathBuf,
}

pub fn tournament(args: TournamentArgs) -> Result<(), CliError> {
    Err(CliError::Input(format!("{}: `negotium tournament` is not implemented yet", args.path.display())))
}
