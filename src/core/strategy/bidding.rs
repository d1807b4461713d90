//! Bidding strategies (the B of BOA): what utility to aim for now.

/// How a party sets its target utility over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Bidding {
    /// Aspiration 1 − t^(1/e) over the party's range [max(rv, min u), max u]:
    /// e < 1 Boulware (e = 0.25 is t^4), e = 1 linear, e > 1 conceder.
    TimeDependent { e: f64 },
    /// Never concedes: always its best outcome.
    Hardliner,
    /// A uniformly random rational outcome each turn.
    Random,
    /// Relative tit-for-tat: concedes the same share of its range that the
    /// opponents conceded of theirs, as seen through this party's utility.
    TitForTat { kindness: f64 },
}

/// What bidding may look at: the party's utility range and received offers.
pub struct BiddingInput {
    pub time: f64,
    /// max(reservation value, lowest utility).
    pub low: f64,
    pub high: f64,
    pub first_received: Option<f64>,
    pub last_received: Option<f64>,
}

/// NegMAS widens the aspiration band by this much to absorb rounding; we do
/// the same so that agreements match the peer's.
pub const TARGET_TOLERANCE: f64 = 1e-4;

impl Bidding {
    /// Target utility now; `None` for bidding that ignores utility (random).
    pub fn target(&self, x: &BiddingInput) -> Option<f64> {
        let range = x.high - x.low;
        let raw = match self {
            Bidding::TimeDependent { e } => x.low + range * (1.0 - x.time.powf(1.0 / e)),
            Bidding::Hardliner => x.high,
            Bidding::Random => return None,
            Bidding::TitForTat { kindness } => {
                let conceded = match (x.first_received, x.last_received) {
                    (Some(first), Some(last)) if x.high > first => ((last - first) / (x.high - first)).clamp(0.0, 1.0),
                    _ => 0.0,
                };
                x.high - range * (conceded * kindness).clamp(0.0, 1.0)
            }
        };
        Some((raw - TARGET_TOLERANCE).clamp(x.low, x.high.max(x.low)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(time: f64) -> BiddingInput {
        BiddingInput { time, low: 0.2, high: 1.0, first_received: Some(0.2), last_received: Some(0.6) }
    }

    #[test]
    fn time_dependent_shapes() {
        let at = |e: f64, t: f64| Bidding::TimeDependent { e }.target(&input(t)).unwrap() + TARGET_TOLERANCE;
        assert!((at(1.0, 0.5) - 0.6).abs() < 1e-9);
        assert!(at(0.25, 0.5) > at(1.0, 0.5), "Boulware concedes later");
        assert!(at(4.0, 0.5) < at(1.0, 0.5), "conceder concedes earlier");
        assert!(
            (Bidding::TimeDependent { e: 1.0 }.target(&input(1.0)).unwrap() - 0.2).abs() < 1e-12,
            "never below low"
        );
    }

    #[test]
    fn tit_for_tat_mirrors_concession() {
        let t = Bidding::TitForTat { kindness: 1.0 }.target(&input(0.3)).unwrap() + TARGET_TOLERANCE;
        // The opponent gave half of what it could (0.2 → 0.6 of 1.0): concede half of 0.8.
        assert!((t - 0.6).abs() < 1e-9);
        assert_eq!(Bidding::Hardliner.target(&input(0.9)), Some(1.0 - TARGET_TOLERANCE));
        assert_eq!(Bidding::Random.target(&input(0.9)), None);
    }
}
