//! results.jsonl: appended to as negotiations finish, read back to resume.
//!
//! A process killed mid-write leaves at most one partial line, at the end
//! (lines are only ever appended). Opening the file drops that line, so the
//! session it belonged to simply runs again: no session is lost, and none is
//! counted twice. Lines whose key this tournament does not hold (a strategy
//! was removed from the file since) are kept in the file and left out of the
//! tables.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use thiserror::Error;

use super::plan::Planned;
use super::summary::Row;
use crate::core::scenario::ScenarioError;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Another process writes this file: two writers would interleave lines.
    #[error(
        "{0} is in use by another negotium run (it holds the file's lock); wait for it to end or choose another output"
    )]
    Locked(String),
    /// The file holds something this tournament cannot resume from.
    #[error("{0}")]
    Content(ScenarioError),
}

/// What an existing results.jsonl already holds for this tournament.
#[derive(Debug, Default)]
pub struct Existing {
    /// Plan index and row of every session already run (each key once).
    pub done: Vec<(usize, Row)>,
    /// Lines for sessions this tournament does not hold.
    pub foreign: usize,
    /// Later lines for a key already seen (kept in the file, not counted).
    pub duplicates: usize,
    /// Bytes of a partial last line that were cut off.
    pub truncated_bytes: u64,
}

/// Opens (or creates) a results file and takes its lock, held as long as
/// the returned file is open: a second run writing into it at the same
/// time is refused instead of interleaving its lines.
pub fn lock(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
    }
}

/// Opens (or creates) `path` for appending, after reading what it holds;
/// the file stays locked while it is open (see [`lock`]).
pub fn open(path: &Path, tournament: &str, plan: &[Planned]) -> Result<(Existing, File), StoreError> {
    let mut file = lock(path)?;
    let by_key: HashMap<&str, &Planned> = plan.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut existing = Existing::default();
    let mut seen = vec![false; plan.len()];
    let name = path.display().to_string();
    let content = |line: usize, message: String| {
        StoreError::Content(ScenarioError { file: name.clone(), line: Some(line), message })
    };

    let mut reader = BufReader::with_capacity(1 << 20, &mut file);
    let mut buf: Vec<u8> = Vec::new();
    // End of the last line kept; everything after it is cut.
    let mut good_end: u64 = 0;
    let mut offset: u64 = 0;
    let mut line_no = 0;
    // A line that does not parse is only acceptable as the file's last.
    let mut bad: Option<(usize, String)> = None;
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        line_no += 1;
        offset += read as u64;
        if let Some((at, why)) = bad.take() {
            return Err(content(at, format!("not a tournament result line ({why}); move the file away to start over")));
        }
        if buf.last() != Some(&b'\n') {
            break; // partial last line: cut below
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                bad = Some((line_no, e.to_string()));
                continue;
            }
        };
        if text.is_empty() {
            good_end = offset;
            continue;
        }
        let row = match Row::from_line(text) {
            Ok(r) => r,
            Err(e) => {
                bad = Some((line_no, e.to_string()));
                continue;
            }
        };
        good_end = offset;
        if row.tournament != tournament {
            return Err(content(
                line_no,
                format!(
                    "this file holds results of tournament `{}`, not `{tournament}`; give another --out",
                    row.tournament
                ),
            ));
        }
        match by_key.get(row.key.as_str()) {
            None => existing.foreign += 1,
            Some(p) if p.seed != row.seed => {
                return Err(content(
                    line_no,
                    format!(
                        "session `{}` ran with seed {}, but this tournament gives it seed {} (was `seed` \
                         changed?); give another --out",
                        row.key, row.seed, p.seed
                    ),
                ));
            }
            Some(p) if seen[p.index] => existing.duplicates += 1,
            Some(p) => {
                seen[p.index] = true;
                existing.done.push((p.index, row));
            }
        }
    }
    drop(reader);
    let len = file.metadata()?.len();
    if len > good_end {
        existing.truncated_bytes = len - good_end;
        file.set_len(good_end)?;
        file.sync_data()?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok((existing, file))
}
