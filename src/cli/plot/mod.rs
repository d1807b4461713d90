//! `negotium plot`: pictures of results files.
//!
//! - One negotiation (`run --out` results, or `--session`/`--all`): the
//!   utility space of the first two parties with every outcome, the Pareto
//!   frontier, the Nash and Kalai–Smorodinsky points, each party's offers and
//!   the agreement ([`session`]).
//! - A tournament (records with a `tournament` field, or `--tournament`):
//!   per-strategy bars, mean ± standard error, of own utility, agreement
//!   rate, social welfare and distance to Nash ([`tournament`]).
//!
//! Every plot is drawn once as SVG and rasterised to PNG from that SVG
//! ([`render`]).

mod input;
mod render;
mod session;
mod space;
pub(super) mod style;
mod tournament;

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::{CliError, failure};
use input::{Flow, Head, Record, Score, each_line};
pub(super) use render::Rasterizer;

#[derive(clap::Args)]
#[command(after_help = "Plots are named RESULTS-session-N.svg/.png and RESULTS-strategies.svg/.png. \
PNG text uses a TrueType font read at run time (DejaVu Sans, Liberation Sans, Noto Sans or Arial \
where installed); NEGOTIUM_FONT=/path/to/font.ttf chooses one.")]
pub struct PlotArgs {
    /// Results file: one JSON record per line, from `negotium run --out` or `negotium tournament`.
    #[arg(value_name = "RESULTS.jsonl")]
    path: PathBuf,
    /// The scenario the negotiations ran on (TOML file or Genius folder): adds every outcome,
    /// the Pareto frontier and the Nash and Kalai–Smorodinsky points. Without it, a scenario file
    /// with the record's scenario name is looked for next to RESULTS and in ./scenarios.
    #[arg(long, value_name = "SCENARIO")]
    scenario: Option<PathBuf>,
    /// Plot the negotiation whose `session` (or tournament `key`) is N (default: the first line).
    #[arg(long, value_name = "N", conflicts_with_all = ["all", "tournament"])]
    session: Option<String>,
    /// Plot every negotiation of the file, one plot each.
    #[arg(long, conflicts_with = "tournament")]
    all: bool,
    /// Per-strategy bar charts (the default when the records come from `negotium tournament`).
    #[arg(long)]
    tournament: bool,
    /// Folder for the plots (default: the folder of RESULTS); created if missing.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// SVG, PNG (rasterised from the SVG) or both.
    #[arg(long, value_enum, default_value = "both")]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Svg,
    Png,
    Both,
}

/// Where plots go and in which formats.
struct Output {
    dir: PathBuf,
    stem: String,
    format: Format,
    raster: Option<Rasterizer>,
    written: Vec<PathBuf>,
}

impl Output {
    fn new(args: &PlotArgs) -> Result<Self, CliError> {
        let dir = match &args.out {
            Some(d) => d.clone(),
            None => match args.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        let stem = args.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "results".into());
        Ok(Self { dir, stem, format: args.format, raster: None, written: Vec::new() })
    }

    /// Writes `svg` as `<stem>-<name>.svg` and/or `.png`.
    fn write(&mut self, name: &str, svg: &str) -> Result<(), CliError> {
        if self.written.is_empty() {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| CliError::Input(format!("cannot create the output folder {}: {e}", self.dir.display())))?;
        }
        let base = format!("{}-{}", self.stem, sanitize(name));
        if self.format != Format::Png {
            let path = self.dir.join(format!("{base}.svg"));
            std::fs::write(&path, svg).map_err(|e| failure(format!("cannot write {}: {e}", path.display())))?;
            self.written.push(path);
        }
        if self.format != Format::Svg {
            let raster = self.raster.get_or_insert_with(|| {
                let r = Rasterizer::new();
                if let Some(w) = r.warning() {
                    eprintln!("warning: {w}");
                }
                r
            });
            let png = raster.png(svg).map_err(failure)?;
            let path = self.dir.join(format!("{base}.png"));
            std::fs::write(&path, png).map_err(|e| failure(format!("cannot write {}: {e}", path.display())))?;
            self.written.push(path);
        }
        Ok(())
    }
}

/// A file-name-safe form of a session id or key.
fn sanitize(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(80)
        .collect();
    if cleaned.is_empty() { "_".into() } else { cleaned }
}

pub fn plot(args: PlotArgs) -> Result<(), CliError> {
    if let Some(s) = &args.scenario
        && !s.exists()
    {
        return Err(CliError::Input(format!("--scenario {}: no such file or folder", s.display())));
    }
    let mut out = Output::new(&args)?;
    // The mode follows the first record unless the arguments say.
    let mut mode: Option<Mode> = None;
    let mut spaces = space::Spaces::new(args.scenario.clone(), &args.path);
    let strict = !args.all;
    let mut found = false;
    let mut ids: Vec<String> = Vec::new();
    let mut tally = tournament::Tally::default();
    let path = args.path.clone();
    each_line(&path, |n, text, head: Head| {
        let m = *mode.get_or_insert_with(|| {
            if args.tournament || (args.session.is_none() && !args.all && head.tournament.is_some()) {
                Mode::Tournament
            } else {
                Mode::Sessions
            }
        });
        match m {
            Mode::Tournament => {
                let score: Score = input::parse(&path, n, text)?;
                tally.add(&score).map_err(|e| CliError::Input(format!("{}:{n}: {e}", path.display())))?;
                Ok(Flow::Continue)
            }
            Mode::Sessions => {
                let wanted = match &args.session {
                    Some(s) => head.is(s),
                    None => args.all || !found,
                };
                if !wanted {
                    if args.session.is_some() && ids.len() < 12 {
                        ids.extend([&head.session, &head.key].into_iter().flatten().map(input::id_text).take(1));
                    }
                    return Ok(Flow::Continue);
                }
                found = true;
                let record: Record = input::parse(&path, n, text)?;
                plot_session(&record, n, &mut spaces, strict, &mut out)?;
                Ok(if args.session.is_some() { Flow::Stop } else { Flow::Continue })
            }
        }
    })?;
    if let Some(s) = &args.session
        && !found
    {
        let known = if ids.is_empty() { "none of its records has a `session` or `key`".into() } else { ids.join(", ") };
        return Err(CliError::Input(format!(
            "{}: no negotiation with session or key `{s}` (first ones: {known})",
            args.path.display()
        )));
    }
    if mode == Some(Mode::Tournament) {
        let svg = tournament::draw(&tally).map_err(failure)?;
        tally.print();
        out.write("strategies", &svg)?;
    }
    for p in &out.written {
        outln!("wrote {}", p.display());
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sessions,
    Tournament,
}

fn plot_session(
    record: &Record,
    line: usize,
    spaces: &mut space::Spaces,
    strict: bool,
    out: &mut Output,
) -> Result<(), CliError> {
    let id = record.id(line);
    if record.parties.len() < 2 {
        return Err(CliError::Input(format!("line {line}: a utility-space plot needs two parties or more")));
    }
    if !record.utilities.is_empty() && record.utilities.len() != record.parties.len() {
        return Err(CliError::Input(format!(
            "line {line}: {} utilities for {} parties",
            record.utilities.len(),
            record.parties.len()
        )));
    }
    let (space, mut notes) = spaces.for_record(record, &id, strict)?;
    for n in &notes {
        outln!("note: {n}");
    }
    if record.parties.len() > 2 {
        let msg = format!(
            "{} parties: the plot shows the utilities of the first two ({} and {}); the Pareto-optimal \
             outcomes, Nash and Kalai–Smorodinsky points are those of all {} parties, projected",
            record.parties.len(),
            record.parties[0],
            record.parties[1],
            record.parties.len()
        );
        outln!("note: {msg}");
        notes.push(msg);
    }
    let svg = session::draw(record, &id, space.as_deref(), &notes).map_err(failure)?;
    out.write(&format!("session-{id}"), &svg)
}

/// A path shown relative to the current folder where it is inside it.
fn shown(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}
