//! Strings and events a remote caller controls, as logs and errors show
//! them.
//!
//! A caller can send a megabyte of session id, a newline in a scenario name
//! or a thousand refused joins a second. Logs must neither grow with that
//! nor let it forge lines: [`shown`] cuts a string to 64 characters and
//! escapes control characters, and a [`LogBudget`] lets a few warnings of a
//! kind through per second and counts the rest.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Characters of a caller's string that logs and echoed errors keep.
pub const SHOWN_CHARS: usize = 64;
/// Characters of a caller's string an error echoes back (ids and names are
/// shorter: a server caps names at 256 bytes).
pub const ECHO_CHARS: usize = 256;

/// A caller's string for a log line or an error message: at most
/// [`SHOWN_CHARS`] characters, control characters and quotes escaped, and
/// how much was cut.
pub struct Shown<'a>(&'a str);

pub fn shown(s: &str) -> Shown<'_> {
    Shown(s)
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.char_indices();
        let mut end = self.0.len();
        for (n, (k, c)) in chars.by_ref().enumerate() {
            if n == SHOWN_CHARS {
                end = k;
                break;
            }
            for e in c.escape_debug() {
                f.write_str(e.encode_utf8(&mut [0; 4]))?;
            }
        }
        if end < self.0.len() {
            write!(f, "…(+{} bytes)", self.0.len() - end)?;
        }
        Ok(())
    }
}

/// The part of a caller's string an error may echo back to it: whole if
/// short, else cut (an id longer than this names nothing anyway).
pub fn echo(s: &str) -> String {
    cut(s, ECHO_CHARS)
}

/// The first `chars` characters of a caller's string.
pub fn cut(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((k, _)) => s[..k].to_string(),
        None => s.to_string(),
    }
}

/// At most `per_second` events of one kind logged per second; the others
/// are counted and the count goes with the next one logged.
pub struct LogBudget {
    per_second: u32,
    /// (start of the current second, logged in it, suppressed since the
    /// last one logged).
    state: Mutex<Option<(Instant, u32, u64)>>,
}

impl LogBudget {
    pub const fn new(per_second: u32) -> Self {
        Self { per_second, state: Mutex::new(None) }
    }

    /// `Some(suppressed)`: log this one, mentioning how many were left out
    /// since the last; `None`: leave it out.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (start, logged, suppressed) = state.get_or_insert((now, 0, 0));
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *logged = 0;
        }
        if *logged < self.per_second {
            *logged += 1;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_forged_strings_are_cut_and_escaped() {
        assert_eq!(shown("abc").to_string(), "abc");
        let forged = "name\n2026-01-01T00:00:00Z  INFO forged line";
        let s = shown(forged).to_string();
        assert!(!s.contains('\n') && s.contains("\\n"), "{s}");
        let huge = "x".repeat(1 << 20);
        let s = shown(&huge).to_string();
        assert!(s.len() < 100 && s.ends_with(&format!("(+{} bytes)", (1 << 20) - 64)), "{s}");
        assert_eq!(echo(&huge).len(), 256);
        let wide = "é".repeat(200);
        assert_eq!(echo(&wide).chars().count(), 200);
    }

    #[test]
    fn a_budget_lets_a_few_through_and_counts_the_rest() {
        let b = LogBudget::new(3);
        assert_eq!(b.allow(), Some(0));
        assert_eq!(b.allow(), Some(0));
        assert_eq!(b.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(b.allow(), None);
        }
        std::thread::sleep(Duration::from_millis(1010));
        assert_eq!(b.allow(), Some(1000));
    }
}
