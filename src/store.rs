//! Results files (one JSON line per negotiation), for `run --out` and
//! tournaments alike: appended to as negotiations finish, read back to
//! resume.
//!
//! A process killed mid-write leaves at most one partial line, at the end
//! (lines are only ever appended). Opening the file drops that line, so the
//! session it belonged to simply runs again: no session is lost, and none is
//! counted twice.
//!
//! Resuming only makes sense with the settings the file was started with:
//! every line says its session's seed, strategies and scenario (a digest of
//! what the parties negotiate over), and a line that disagrees with what this
//! run would give that session is refused, naming what differs, instead of
//! mixing two runs in one file. Lines of sessions that this run does not hold
//! are the caller's call: a tournament whose file lost a strategy keeps them
//! out of its tables; a plain run refuses them.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::core::scenario::{Scenario, ScenarioError};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Another process writes this file: two writers would interleave lines.
    #[error(
        "{0} is in use by another negotium run (it holds the file's lock); wait for it to end or choose another output"
    )]
    Locked(String),
    /// The file holds something this run cannot resume from.
    #[error("{0}")]
    Content(ScenarioError),
}

/// The record field that carries [`scenario_digest`].
pub const DIGEST_FIELD: &str = "scenario_digest";

/// What a session's line must say to count as a result of this run.
pub struct Expect<'a> {
    pub seed: u64,
    /// Strategy labels in turn order, as records write them.
    pub strategies: Cow<'a, [String]>,
    /// [`scenario_digest`] of the scenario it plays.
    pub scenario_digest: &'a str,
}

/// How a line names its session: tournaments by `key` (stable when the
/// file changes), plain runs by `session` (its negotiation number).
#[derive(Debug, Clone, Copy)]
pub struct LineId<'a> {
    pub key: Option<&'a str>,
    pub session: Option<u64>,
}

/// What this run makes of a line's session.
pub enum Lookup<'a> {
    /// Session `index` (< [`Sessions::count`]) of this run.
    Held(usize, Expect<'a>),
    /// Not a session of this run: the line stays in the file, uncounted.
    Foreign,
    /// Not a session of this run, and it cannot be: resuming is refused.
    Refused(String),
}

/// The sessions a run or tournament holds, looked up by what lines say.
pub trait Sessions {
    fn count(&self) -> usize;
    fn lookup(&self, id: LineId<'_>) -> Lookup<'_>;
    /// Every line must belong to this tournament (`None`: a plain run).
    fn tournament(&self) -> Option<&str> {
        None
    }
}

/// What an existing results file already holds for this run.
#[derive(Debug)]
pub struct Existing<T> {
    /// Index and row of every session already run (each once).
    pub done: Vec<(usize, T)>,
    /// Lines for sessions this run does not hold.
    pub foreign: usize,
    /// Later lines for a session already seen (kept in the file, not counted).
    pub duplicates: usize,
    /// Lines without a scenario digest (written before lines carried one):
    /// kept on their seed and strategies alone.
    pub undigested: usize,
    /// Bytes of a partial last line that were cut off.
    pub truncated_bytes: u64,
}

impl<T> Default for Existing<T> {
    fn default() -> Self {
        Self { done: Vec::new(), foreign: 0, duplicates: 0, undigested: 0, truncated_bytes: 0 }
    }
}

/// A digest of what a scenario's sessions negotiate over: the domain, each
/// party's name and preferences, and the deadline — not its name, seed or
/// strategies (checked on their own, and a tournament renames scenarios).
/// FNV-1a over its JSON form: stable across builds and platforms, which
/// std's hasher does not promise. Not a defence against forgery, only
/// against resuming with another scenario by mistake.
pub fn scenario_digest(scenario: &Scenario) -> String {
    let parties: Vec<_> = scenario.parties.iter().map(|p| (&p.name, &p.preferences)).collect();
    let text = serde_json::to_vec(&(&scenario.domain, parties, &scenario.deadline)).expect("a scenario serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
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

/// The fields every line is checked on.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    tournament: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    session: Option<u64>,
    seed: u64,
    #[serde(default)]
    strategies: Option<Vec<String>>,
    #[serde(default)]
    scenario_digest: Option<String>,
}

/// Opens (or creates) `path` for appending, after reading what it holds
/// and checking it against `sessions`; each line of a session of this run
/// is read as a `T`. The file stays locked while it is open (see [`lock`]).
pub fn open<T: DeserializeOwned>(path: &Path, sessions: &dyn Sessions) -> Result<(Existing<T>, File), StoreError> {
    let mut file = lock(path)?;
    let mut existing = Existing::default();
    let mut seen = vec![false; sessions.count()];
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
            return Err(content(at, format!("not a result line ({why}); move the file away to start over")));
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
        let head: Head = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(e) => {
                bad = Some((line_no, e.to_string()));
                continue;
            }
        };
        good_end = offset;
        check_tournament(sessions.tournament(), head.tournament.as_deref()).map_err(|m| content(line_no, m))?;
        let id = LineId { key: head.key.as_deref(), session: head.session };
        match sessions.lookup(id) {
            Lookup::Foreign => existing.foreign += 1,
            Lookup::Refused(message) => return Err(content(line_no, message)),
            Lookup::Held(index, expect) => {
                check(&head, &expect, &mut existing.undigested).map_err(|m| content(line_no, m))?;
                if seen[index] {
                    existing.duplicates += 1;
                    continue;
                }
                let row =
                    serde_json::from_str(text).map_err(|e| content(line_no, format!("not a result line ({e})")))?;
                seen[index] = true;
                existing.done.push((index, row));
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

fn check_tournament(expected: Option<&str>, line: Option<&str>) -> Result<(), String> {
    match (expected, line) {
        (None, None) => Ok(()),
        (Some(t), Some(l)) if t == l => Ok(()),
        (Some(t), Some(l)) => {
            Err(format!("this file holds results of tournament `{l}`, not `{t}`; give another --out"))
        }
        (Some(t), None) => {
            Err(format!("this file holds results of a plain run, not of tournament `{t}`; give another --out"))
        }
        (None, Some(l)) => {
            Err(format!("this file holds results of tournament `{l}`, not of this run; give another --out"))
        }
    }
}

/// A line of one of this run's sessions must say what this run would give it.
fn check(head: &Head, expect: &Expect<'_>, undigested: &mut usize) -> Result<(), String> {
    let who = match (&head.key, head.session) {
        (Some(k), _) => format!("session `{k}`"),
        (None, Some(j)) => format!("negotiation {j}"),
        (None, None) => "a session".into(),
    };
    let advice = "resume with the settings it was started with, or give another --out";
    if head.seed != expect.seed {
        return Err(format!(
            "seed differs: {who} ran with seed {}, this run gives it seed {} (was --seed or the file's `seed` \
             changed?); {advice}",
            head.seed, expect.seed
        ));
    }
    if let Some(played) = &head.strategies
        && played.as_slice() != expect.strategies.as_ref()
    {
        return Err(format!(
            "strategies differ: {who} was played by [{}], this run plays [{}] (was --strategy or a strategy \
             changed?); {advice}",
            played.join(", "),
            expect.strategies.join(", ")
        ));
    }
    match &head.scenario_digest {
        Some(d) if d != expect.scenario_digest => Err(format!(
            "scenario differs: {who} ran on a scenario with digest {d}, this run's has digest {} (was the \
             scenario file changed?); {advice}",
            expect.scenario_digest
        )),
        Some(_) => Ok(()),
        None => {
            *undigested += 1;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde::de::IgnoredAny;

    use super::*;

    /// A plain run of `repeat` negotiations from `seed`.
    struct Run {
        repeat: u64,
        seed: u64,
        strategies: Vec<String>,
        digest: String,
    }

    impl Sessions for Run {
        fn count(&self) -> usize {
            self.repeat as usize
        }

        fn lookup(&self, id: LineId<'_>) -> Lookup<'_> {
            match id.session {
                Some(j) if j < self.repeat => Lookup::Held(
                    j as usize,
                    Expect {
                        seed: self.seed + j,
                        strategies: Cow::Borrowed(&self.strategies),
                        scenario_digest: &self.digest,
                    },
                ),
                _ => Lookup::Refused("beyond --repeat".into()),
            }
        }
    }

    fn run(repeat: u64, seed: u64) -> Run {
        Run { repeat, seed, strategies: vec!["boulware".into(), "conceder".into()], digest: "00ff".into() }
    }

    fn line(j: u64, seed: u64, strategies: &str, digest: Option<&str>) -> String {
        let digest = digest.map(|d| format!(r#","scenario_digest":"{d}""#)).unwrap_or_default();
        format!(r#"{{"session":{j},"seed":{seed},"strategies":{strategies}{digest},"trace":[]}}"#)
    }

    fn file_with(lines: &[String], tail: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
        write!(f, "{tail}").expect("write");
        f
    }

    const PAIR: &str = r#"["boulware","conceder"]"#;

    #[test]
    fn a_file_of_the_same_run_resumes_and_its_partial_line_is_cut() {
        let lines: Vec<String> = (0..3).map(|j| line(j, 10 + j, PAIR, Some("00ff"))).collect();
        let f = file_with(&lines, r#"{"session":3,"se"#);
        let (existing, file) = open::<IgnoredAny>(f.path(), &run(8, 10)).expect("same settings");
        let mut done: Vec<usize> = existing.done.iter().map(|(j, _)| *j).collect();
        done.sort();
        assert_eq!(done, [0, 1, 2]);
        assert_eq!(existing.truncated_bytes, 16);
        assert_eq!(file.metadata().expect("meta").len(), lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>());
    }

    #[test]
    fn each_changed_setting_is_refused_by_name() {
        let cases = [
            (line(1, 11, PAIR, Some("00ff")), run(8, 20), "seed differs"),
            (line(1, 11, r#"["boulware","linear"]"#, Some("00ff")), run(8, 10), "strategies differ"),
            (line(1, 11, PAIR, Some("abcd")), run(8, 10), "scenario differs"),
            (line(9, 19, PAIR, Some("00ff")), run(8, 10), "beyond --repeat"),
        ];
        for (text, settings, needle) in cases {
            let f = file_with(&[text], "");
            let err = open::<IgnoredAny>(f.path(), &settings).expect_err(needle).to_string();
            assert!(err.contains(needle) && err.contains(":1:"), "{needle}: {err}");
        }
    }

    #[test]
    fn lines_without_a_digest_are_kept_and_counted() {
        let f = file_with(&[line(0, 10, PAIR, None), line(0, 10, PAIR, None)], "");
        let (existing, _) = open::<IgnoredAny>(f.path(), &run(2, 10)).expect("older lines resume");
        assert_eq!((existing.done.len(), existing.duplicates, existing.undigested), (1, 1, 2));
    }

    #[test]
    fn a_tournament_file_is_not_a_plain_run() {
        let f = file_with(&[r#"{"tournament":"t","key":"k","session":0,"seed":1}"#.to_string()], "");
        let err = open::<IgnoredAny>(f.path(), &run(2, 1)).expect_err("not a run").to_string();
        assert!(err.contains("tournament `t`"), "{err}");
    }
}
