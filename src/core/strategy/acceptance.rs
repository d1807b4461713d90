//! Acceptance conditions (the A of BOA).

use serde_json::Value as Json;

use crate::core::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq)]
pub enum Acceptance {
    /// Accept at or above the bidding target of this moment (what NegMAS'
    /// time-based negotiators do; the target already includes the reservation value).
    Target,
    /// AC_next: accept if the offer is at least as good as my next bid.
    Next,
    /// AC_const: accept anything worth at least `c`.
    Const(f64),
    /// AC_time: accept any rational offer once relative time reaches `t`.
    Time(f64),
    /// AC_combi: AC_next, or after time `t` anything at least as good as the
    /// best offer received so far.
    Combi {
        t: f64,
    },
    /// AC_prev: accept if the offer is at least as good as my previous bid.
    Prev,
    /// AC_gap(c): accept if the offer is within `c` of my previous bid.
    Gap {
        c: f64,
    },
    /// AC_combi(t, MAX^W): AC_next, or after time `t` anything at least as
    /// good as the best offer received in the last window of the length
    /// still to go (Baarslag et al. 2014's best-performing combination).
    CombiMaxW {
        t: f64,
    },
    /// Accept a rational offer with probability p (the random strategy).
    Probability(f64),
    Any(Vec<Acceptance>),
    All(Vec<Acceptance>),
}

/// What an acceptance condition may look at.
pub struct AcceptInput<'a> {
    pub offer_utility: f64,
    pub target: f64,
    pub next_bid_utility: f64,
    pub time: f64,
    pub best_received: f64,
    /// Utility of my previous bid (+∞ before I made one).
    pub previous_bid_utility: f64,
    /// Offers received so far: (relative time, my utility), oldest first.
    pub received: &'a [(f64, f64)],
    pub rng: &'a mut SplitMix64,
}

impl Acceptance {
    /// Whether this condition looks at the offers received (so that a
    /// strategy keeps them).
    pub fn needs_history(&self) -> bool {
        match self {
            Acceptance::CombiMaxW { .. } => true,
            Acceptance::Any(v) | Acceptance::All(v) => v.iter().any(Acceptance::needs_history),
            _ => false,
        }
    }

    /// Whether this condition needs the next bid computed first.
    pub fn needs_next_bid(&self) -> bool {
        match self {
            Acceptance::Next | Acceptance::Combi { .. } | Acceptance::CombiMaxW { .. } => true,
            Acceptance::Any(v) | Acceptance::All(v) => v.iter().any(Acceptance::needs_next_bid),
            _ => false,
        }
    }

    pub fn accepts(&self, x: &mut AcceptInput<'_>) -> bool {
        let u = x.offer_utility;
        match self {
            Acceptance::Target => u >= x.target,
            Acceptance::Next => u >= x.next_bid_utility,
            Acceptance::Const(c) => u >= *c,
            Acceptance::Time(t) => x.time >= *t,
            Acceptance::Combi { t } => u >= x.next_bid_utility || (x.time >= *t && u >= x.best_received),
            Acceptance::Prev => u >= x.previous_bid_utility,
            Acceptance::Gap { c } => u + c >= x.previous_bid_utility,
            Acceptance::CombiMaxW { t } => {
                let window_start = x.time - (1.0 - x.time);
                let best_in_window = x
                    .received
                    .iter()
                    .rev()
                    .take_while(|(at, _)| *at >= window_start)
                    .map(|(_, u)| *u)
                    .fold(f64::NEG_INFINITY, f64::max);
                u >= x.next_bid_utility || (x.time >= *t && u >= best_in_window)
            }
            Acceptance::Probability(p) => x.rng.next_f64() < *p,
            Acceptance::Any(v) => v.iter().any(|a| a.accepts(x)),
            Acceptance::All(v) => v.iter().all(|a| a.accepts(x)),
        }
    }

    /// `"ac_next"`, `{ type = "ac_const", c = 0.8 }`, `{ type = "any", of = [...] }`.
    pub fn from_json(v: &Json) -> Result<Self, String> {
        const NAMES: &str = "ac_target, ac_next, ac_prev, ac_gap (c), ac_const (c), ac_time (t), ac_combi (t), \
                             ac_combi_max_w (t), any (of), all (of)";
        let (name, table) = match v {
            Json::String(s) => (s.as_str(), None),
            Json::Object(m) => (m.get("type").and_then(Json::as_str).ok_or("needs `type`")?, Some(m)),
            _ => return Err(format!("must be a name or a table ({NAMES})")),
        };
        let num = |key: &str| -> Result<f64, String> {
            table
                .and_then(|m| m.get(key))
                .and_then(Json::as_f64)
                .ok_or_else(|| format!("`{name}` needs a number `{key}`"))
        };
        let unit = |key: &str| -> Result<f64, String> {
            let x = num(key)?;
            if (0.0..=1.0).contains(&x) { Ok(x) } else { Err(format!("`{name}`: `{key}` must lie in [0, 1]")) }
        };
        let list = || -> Result<Vec<Acceptance>, String> {
            let of = table
                .and_then(|m| m.get("of"))
                .and_then(Json::as_array)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("`{name}` needs a non-empty list `of`"))?;
            of.iter().map(Acceptance::from_json).collect()
        };
        Ok(match name {
            "ac_target" => Acceptance::Target,
            "ac_next" => Acceptance::Next,
            "ac_const" => Acceptance::Const(unit("c")?),
            "ac_time" => Acceptance::Time(unit("t")?),
            "ac_combi" => Acceptance::Combi { t: unit("t")? },
            "ac_prev" => Acceptance::Prev,
            "ac_gap" => Acceptance::Gap { c: unit("c")? },
            "ac_combi_max_w" => Acceptance::CombiMaxW { t: unit("t")? },
            "any" => Acceptance::Any(list()?),
            "all" => Acceptance::All(list()?),
            other => return Err(format!("unknown acceptance `{other}`; valid: {NAMES}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: [(f64, f64); 4] = [(0.1, 0.6), (0.5, 0.5), (0.8, 0.58), (0.9, 0.55)];

    fn input(rng: &mut SplitMix64, u: f64, t: f64) -> AcceptInput<'_> {
        AcceptInput {
            offer_utility: u,
            target: 0.7,
            next_bid_utility: 0.75,
            time: t,
            best_received: 0.6,
            previous_bid_utility: 0.8,
            received: &RECEIVED,
            rng,
        }
    }

    #[test]
    fn conditions() {
        let mut rng = SplitMix64::new(1);
        assert!(Acceptance::Target.accepts(&mut input(&mut rng, 0.7, 0.1)));
        assert!(!Acceptance::Next.accepts(&mut input(&mut rng, 0.7, 0.1)));
        assert!(Acceptance::Const(0.5).accepts(&mut input(&mut rng, 0.5, 0.1)));
        assert!(!Acceptance::Time(0.9).accepts(&mut input(&mut rng, 0.9, 0.5)));
        let combi = Acceptance::Combi { t: 0.9 };
        assert!(!combi.accepts(&mut input(&mut rng, 0.65, 0.5)));
        assert!(combi.accepts(&mut input(&mut rng, 0.65, 0.95)));
        let all = Acceptance::from_json(
            &serde_json::json!({"type": "all", "of": ["ac_next", {"type": "ac_time", "t": 0.5}]}),
        )
        .unwrap();
        assert!(!all.accepts(&mut input(&mut rng, 0.8, 0.4)));
        assert!(all.accepts(&mut input(&mut rng, 0.8, 0.6)));
        assert!(Acceptance::from_json(&serde_json::json!("ac_maybe")).unwrap_err().contains("valid"));
        assert!(!Acceptance::Prev.accepts(&mut input(&mut rng, 0.79, 0.1)));
        assert!(Acceptance::Prev.accepts(&mut input(&mut rng, 0.8, 0.1)));
        assert!(Acceptance::Gap { c: 0.05 }.accepts(&mut input(&mut rng, 0.75, 0.1)));
        assert!(!Acceptance::Gap { c: 0.05 }.accepts(&mut input(&mut rng, 0.74, 0.1)));
        // At t = 0.95 the window is [0.9, 0.95]: the best in it is 0.55, not the
        // 0.6 of t = 0.1 (which AC_combi's best-ever would wait for).
        let max_w = Acceptance::CombiMaxW { t: 0.9 };
        assert!(max_w.accepts(&mut input(&mut rng, 0.56, 0.95)));
        assert!(!Acceptance::Combi { t: 0.9 }.accepts(&mut input(&mut rng, 0.56, 0.95)));
        assert!(!max_w.accepts(&mut input(&mut rng, 0.56, 0.85)), "not before t");
        // At t = 0.85 the window [0.7, 0.85] holds 0.58.
        assert!(!Acceptance::CombiMaxW { t: 0.8 }.accepts(&mut input(&mut rng, 0.57, 0.85)));
        assert!(Acceptance::CombiMaxW { t: 0.8 }.accepts(&mut input(&mut rng, 0.58, 0.85)));
    }
}
