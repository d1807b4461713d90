//! Progress bars of the long commands (`run --repeat`, `tournament`,
//! `train`), with one rule for their time estimate and rate.
//!
//! indicatif's own `{eta}` and `{per_sec}` extrapolate from the first few
//! ticks, which come right after start-up (outcome indexes built, actors
//! started, scenario pool loaded): the first estimate of a 20-second run
//! read "eta 2h", and the first rate "0.2/s". Here both are the mean rate
//! since the first unit of work was done (start-up excluded), and are
//! hidden until they mean something: at least [`SETTLE`] has passed since
//! then and [`SETTLE_SHARE`] of the work is done (or [`SETTLE_LONG`] has
//! passed, for runs so long that 1 % takes a while).

use std::time::{Duration, Instant};

use indicatif::style::ProgressTracker;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

const SETTLE: Duration = Duration::from_secs(2);
const SETTLE_SHARE: f64 = 0.01;
const SETTLE_LONG: Duration = Duration::from_secs(10);

/// A bar over `len` units, already at `done` (a resumed run); `template`
/// may use `{eta}` ("eta 12s") and `{rate}` ("118/s"), both "" until they
/// settle.
pub fn bar(len: u64, done: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_position(done);
    bar.set_style(style(template, done));
    bar
}

/// The style of [`bar`], for a bar that starts at position `from`.
pub fn style(template: &str, from: u64) -> ProgressStyle {
    let tracker = |show| Estimate { from, first: None, show };
    ProgressStyle::with_template(template)
        .expect("static progress template")
        .with_key("eta", tracker(Show::Eta))
        .with_key("rate", tracker(Show::Rate))
}

#[derive(Clone, Copy)]
enum Show {
    Eta,
    Rate,
}

/// Remembers when the first unit of work was done, and measures from there.
#[derive(Clone)]
struct Estimate {
    from: u64,
    /// When the position first passed `from`, and that position.
    first: Option<(Instant, u64)>,
    show: Show,
}

impl ProgressTracker for Estimate {
    fn clone_box(&self) -> Box<dyn ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &ProgressState, now: Instant) {
        if self.first.is_none() && state.pos() > self.from {
            self.first = Some((now, state.pos()));
        }
    }

    fn reset(&mut self, state: &ProgressState, _: Instant) {
        self.from = state.pos();
        self.first = None;
    }

    fn write(&self, state: &ProgressState, w: &mut dyn std::fmt::Write) {
        let Some((t0, pos0)) = self.first else { return };
        let Some(per_unit) = settled(t0.elapsed(), state.pos().saturating_sub(pos0), state.len()) else { return };
        let _ = match self.show {
            Show::Eta if state.len().is_some_and(|len| state.pos() < len) => {
                let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                write!(w, "eta {}", short(per_unit.mul_f64(left as f64)))
            }
            Show::Eta => Ok(()),
            Show::Rate => {
                let rate = 1.0 / per_unit.as_secs_f64().max(1e-12);
                if rate >= 10.0 { write!(w, "{rate:.0}/s") } else { write!(w, "{rate:.2}/s") }
            }
        };
    }
}

/// Time per unit over `progressed` units in `elapsed`, once that has
/// settled (see the module's comment).
fn settled(elapsed: Duration, progressed: u64, len: Option<u64>) -> Option<Duration> {
    if progressed == 0 || elapsed < SETTLE {
        return None;
    }
    let share = len.map_or(1.0, |len| progressed as f64 / len.max(1) as f64);
    if share < SETTLE_SHARE && elapsed < SETTLE_LONG {
        return None;
    }
    Some(elapsed.div_f64(progressed as f64))
}

/// `12s`, `4m05s`, `2h10m`.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_waits_for_time_and_progress() {
        let s = Duration::from_secs;
        // Just after the first unit: nothing yet.
        assert_eq!(settled(Duration::from_millis(300), 5, Some(10_000)), None);
        // Two seconds in but under 1 % done: still nothing...
        assert_eq!(settled(s(3), 50, Some(10_000)), None);
        // ...until 1 % is done, or ten seconds have passed.
        assert_eq!(settled(s(3), 100, Some(10_000)), Some(Duration::from_millis(30)));
        assert_eq!(settled(s(10), 50, Some(10_000)), Some(Duration::from_millis(200)));
        assert_eq!(settled(s(3), 0, Some(10)), None);
        assert_eq!(short(s(59)), "59s");
        assert_eq!(short(s(65)), "1m05s");
        assert_eq!(short(s(7_800)), "2h10m");
    }
}
