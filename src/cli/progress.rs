//! Progress bars of the long commands (`run --repeat`, `tournament`,
//! `train`), with one rule for their time estimate.
//!
//! indicatif's own `{eta}` extrapolates from the first few ticks, which
//! come right after start-up (outcome indexes built, actors started,
//! scenario pool loaded): its first estimate of a 20-second run read
//! "eta 2h". Here the estimate is the mean rate since the bar started,
//! and it is hidden until it means something: at least [`SETTLE`] has
//! passed and [`SETTLE_SHARE`] of the work is done (or [`SETTLE_LONG`] has
//! passed, for runs so long that 1 % takes a while).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

const SETTLE: Duration = Duration::from_secs(2);
const SETTLE_SHARE: f64 = 0.01;
const SETTLE_LONG: Duration = Duration::from_secs(10);

/// A bar over `len` units, already at `done` (a resumed run); `template`
/// may use `{eta}` for the estimate above ("" until it settles).
pub fn bar(len: u64, done: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_position(done);
    bar.set_style(style(template, done));
    bar
}

/// The style of [`bar`]: `{eta}` computed from progress since position `from`.
pub fn style(template: &str, from: u64) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("static progress template").with_key(
        "eta",
        move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            if let Some(left) = eta(state.elapsed(), state.pos().saturating_sub(from), state.len(), state.pos()) {
                let _ = write!(w, "eta {}", short(left));
            }
        },
    )
}

/// Time left at the mean rate so far, once that rate has settled.
fn eta(elapsed: Duration, progressed: u64, len: Option<u64>, pos: u64) -> Option<Duration> {
    let len = len?;
    if progressed == 0 || pos >= len || elapsed < SETTLE {
        return None;
    }
    if (progressed as f64) < SETTLE_SHARE * len as f64 && elapsed < SETTLE_LONG {
        return None;
    }
    let per_unit = elapsed.as_secs_f64() / progressed as f64;
    Some(Duration::from_secs_f64(per_unit * (len - pos) as f64))
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
        // The first tick after a slow start: no estimate.
        assert_eq!(eta(Duration::from_millis(300), 5, Some(10_000), 5), None);
        // Two seconds in but under 1 % done: still none...
        assert_eq!(eta(s(3), 50, Some(10_000), 50), None);
        // ...until 1 % is done, or ten seconds have passed.
        assert_eq!(eta(s(3), 100, Some(10_000), 100), Some(s(297)));
        assert_eq!(eta(s(10), 50, Some(10_000), 50), Some(s(1990)));
        // A resumed run counts only what it did itself.
        assert_eq!(eta(s(4), 200, Some(10_000), 9_800), Some(s(4)));
        assert_eq!(eta(s(4), 10, Some(10), 10), None);
        assert_eq!(short(s(59)), "59s");
        assert_eq!(short(s(65)), "1m05s");
        assert_eq!(short(s(7_800)), "2h10m");
    }
}
