//! What a tournament's tables are made of: one [`Row`] per negotiation (read
//! back from its results.jsonl line, so a resumed tournament and a clean one
//! compute from the same numbers) and one [`StrategyStats`] per strategy.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value as Json;

use super::significance::{self, Interval};

/// The fields of a results.jsonl line that the tables use.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Row {
    pub tournament: String,
    pub key: String,
    pub scenario: String,
    pub repetition: u32,
    pub seed: u64,
    /// Parties in turn order (the opener first).
    pub parties: Vec<String>,
    /// Strategy label per party, in the same order.
    pub assignment: Vec<String>,
    pub agreement: Option<Json>,
    pub utilities: Vec<f64>,
    pub reservation_values: Vec<f64>,
    pub welfare: f64,
    pub rounds: u32,
    pub ended_by: String,
    pub distance_to_nash: Option<f64>,
    pub distance_to_pareto: Option<f64>,
    pub distance_to_kalai_smorodinsky: Option<f64>,
    pub distance_to_max_welfare: Option<f64>,
}

impl Row {
    /// Reads the table fields of one results.jsonl line (the trace is skipped
    /// without being built).
    pub fn from_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// Means for one strategy over every (negotiation, party) it played.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrategyStats {
    pub strategy: String,
    /// (negotiation, party) pairs played.
    pub n: usize,
    pub mean_utility: f64,
    /// Mean of utility − reservation value.
    pub mean_advantage: f64,
    pub agreement_rate: f64,
    /// Mean social welfare (sum of utilities) of its negotiations.
    pub mean_welfare: f64,
    /// Mean over the negotiations where the point exists (`None`: never).
    pub mean_distance_to_nash: Option<f64>,
    pub mean_distance_to_pareto: Option<f64>,
    pub mean_rounds: f64,
    /// 95% interval of the mean utility ([`significance::mean_interval`]).
    pub utility_interval: Option<Interval>,
    /// This mean utility minus the next-ranked one's, and its 95% interval:
    /// the gap is real where the interval leaves 0 out. `None` for the last.
    pub gap_to_next: Option<(f64, Interval)>,
}

#[derive(Default)]
struct Acc {
    n: usize,
    utility: f64,
    advantage: f64,
    agreements: usize,
    welfare: f64,
    nash: (f64, usize),
    pareto: (f64, usize),
    rounds: f64,
    /// Every utility, for the intervals.
    utilities: Vec<f64>,
}

/// Per-strategy means, best mean utility first (ties: by label).
pub fn summarize<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<StrategyStats> {
    let mut by: BTreeMap<&str, Acc> = BTreeMap::new();
    for r in rows {
        for (i, label) in r.assignment.iter().enumerate() {
            let a = by.entry(label.as_str()).or_default();
            let u = r.utilities.get(i).copied().unwrap_or(0.0);
            a.n += 1;
            a.utility += u;
            a.utilities.push(u);
            a.advantage += u - r.reservation_values.get(i).copied().unwrap_or(0.0);
            a.agreements += r.agreement.is_some() as usize;
            a.welfare += r.welfare;
            a.rounds += r.rounds as f64;
            for (acc, d) in [(&mut a.nash, r.distance_to_nash), (&mut a.pareto, r.distance_to_pareto)] {
                if let Some(d) = d {
                    acc.0 += d;
                    acc.1 += 1;
                }
            }
        }
    }
    let mean_of = |(sum, k): (f64, usize)| (k > 0).then(|| sum / k as f64);
    let mut stats: Vec<(StrategyStats, Vec<f64>)> = by
        .into_iter()
        .map(|(label, a)| {
            let n = a.n.max(1) as f64;
            let stats = StrategyStats {
                strategy: label.to_string(),
                n: a.n,
                mean_utility: a.utility / n,
                mean_advantage: a.advantage / n,
                agreement_rate: a.agreements as f64 / n,
                mean_welfare: a.welfare / n,
                mean_distance_to_nash: mean_of(a.nash),
                mean_distance_to_pareto: mean_of(a.pareto),
                mean_rounds: a.rounds / n,
                utility_interval: significance::mean_interval(&a.utilities),
                gap_to_next: None,
            };
            (stats, a.utilities)
        })
        .collect();
    stats.sort_by(|(a, _), (b, _)| b.mean_utility.total_cmp(&a.mean_utility).then_with(|| a.strategy.cmp(&b.strategy)));
    for k in 1..stats.len() {
        let difference = stats[k - 1].0.mean_utility - stats[k].0.mean_utility;
        let gap = significance::difference_interval(&stats[k - 1].1, &stats[k].1);
        stats[k - 1].0.gap_to_next = gap.map(|i| (difference, i));
    }
    stats.into_iter().map(|(s, _)| s).collect()
}

/// Every strategy's utilities, by label.
fn utilities_by_strategy<'a>(rows: impl IntoIterator<Item = &'a Row>) -> BTreeMap<&'a str, Vec<f64>> {
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in rows {
        for (i, label) in r.assignment.iter().enumerate() {
            by.entry(label.as_str()).or_default().push(r.utilities.get(i).copied().unwrap_or(0.0));
        }
    }
    by
}

/// summary.md's pairwise table: for each pair of strategies in rank order,
/// the row's mean utility minus the column's with its 95% interval, in
/// bold where the interval leaves 0 out (a real difference).
pub fn pairwise_markdown<'a>(rows: impl IntoIterator<Item = &'a Row>, stats: &[StrategyStats]) -> String {
    let by = utilities_by_strategy(rows);
    let sample = |s: &StrategyStats| by.get(s.strategy.as_str()).map_or(&[][..], |v| v.as_slice());
    let name = |s: &StrategyStats| s.strategy.replace('|', "\\|");
    let mut out = String::from(
        "## Pairwise\n\nRow minus column, mean utility, with its 95% interval; **bold**: the interval leaves 0 \
         out, so the difference is real at 95%.\n\n",
    );
    let _ = writeln!(out, "| | {} |", stats.iter().map(name).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(stats.len()));
    for a in stats {
        let cells: Vec<String> = stats
            .iter()
            .map(|b| {
                if a.strategy == b.strategy {
                    return String::new();
                }
                match significance::difference_interval(sample(a), sample(b)) {
                    Some(i) => {
                        let text = format!("{:+.4} [{:+.4}, {:+.4}]", a.mean_utility - b.mean_utility, i.low, i.high);
                        if i.excludes_zero() { format!("**{text}**") } else { text }
                    }
                    None => "n/a".into(),
                }
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", name(a), cells.join(" | "));
    }
    out
}

/// Columns of summary.csv, in order.
pub const SUMMARY_COLUMNS: &[&str] = &[
    "rank",
    "strategy",
    "n",
    "mean_utility",
    "utility_ci_low",
    "utility_ci_high",
    "gap_to_next_low",
    "gap_to_next_high",
    "mean_advantage",
    "agreement_rate",
    "mean_welfare",
    "mean_distance_to_nash",
    "mean_distance_to_pareto",
    "mean_rounds",
];

/// summary.csv: full precision, empty cells where a mean does not exist.
pub fn summary_csv(stats: &[StrategyStats]) -> String {
    let mut out = SUMMARY_COLUMNS.join(",");
    out.push('\n');
    for (rank, s) in stats.iter().enumerate() {
        let opt = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
        let (ci, gap) = (s.utility_interval, s.gap_to_next);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            rank + 1,
            csv_field(&s.strategy),
            s.n,
            s.mean_utility,
            opt(ci.map(|i| i.low)),
            opt(ci.map(|i| i.high)),
            opt(gap.map(|(_, i)| i.low)),
            opt(gap.map(|(_, i)| i.high)),
            s.mean_advantage,
            s.agreement_rate,
            s.mean_welfare,
            opt(s.mean_distance_to_nash),
            opt(s.mean_distance_to_pareto),
            s.mean_rounds
        );
    }
    out
}

const COLUMNS: usize = 12;
const TABLE_HEAD: [&str; COLUMNS] = [
    "#",
    "strategy",
    "n",
    "utility",
    "95% CI",
    "gap to next",
    "advantage",
    "agreement",
    "welfare",
    "d(Nash)",
    "d(Pareto)",
    "rounds",
];

fn table_cells(rank: usize, s: &StrategyStats) -> [String; COLUMNS] {
    let opt = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    let gap = s.gap_to_next.map_or(String::new(), |(d, i)| {
        let verdict = if i.excludes_zero() { "real" } else { "noise" };
        format!("{d:+.4} ({verdict})")
    });
    [
        (rank + 1).to_string(),
        s.strategy.clone(),
        s.n.to_string(),
        format!("{:.4}", s.mean_utility),
        s.utility_interval.map_or("n/a".into(), |i| format!("[{:.4}, {:.4}]", i.low, i.high)),
        gap,
        format!("{:.4}", s.mean_advantage),
        format!("{:.3}", s.agreement_rate),
        format!("{:.4}", s.mean_welfare),
        opt(s.mean_distance_to_nash),
        opt(s.mean_distance_to_pareto),
        format!("{:.2}", s.mean_rounds),
    ]
}

/// summary.md: a Markdown table, rounded for reading.
pub fn summary_markdown(title: &str, stats: &[StrategyStats]) -> String {
    let mut out = format!("# {title}\n\nMeans per strategy over every (negotiation, party) it played; ");
    out.push_str(
        "utility and welfare (the sum of utilities) after discount, advantage = utility − reservation value; \
         distances to Nash and Pareto before discount, as the analysis takes them. 95% CI: of the mean \
         utility, by the percentile bootstrap (2,000 resamples, seeded; the normal interval beyond 20,000 \
         samples); gap to next: the difference to the next-ranked strategy's mean, *real* where its 95% \
         interval leaves 0 out.\n\n",
    );
    let _ = writeln!(out, "| {} |", TABLE_HEAD.join(" | "));
    let align: Vec<&str> = TABLE_HEAD.iter().enumerate().map(|(i, _)| if i == 1 { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for (rank, s) in stats.iter().enumerate() {
        let cells = table_cells(rank, s).map(|c| c.replace('|', "\\|"));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The table for the terminal: aligned columns.
pub fn summary_text(stats: &[StrategyStats]) -> String {
    let rows: Vec<[String; COLUMNS]> = stats.iter().enumerate().map(|(i, s)| table_cells(i, s)).collect();
    let mut widths: Vec<usize> = TABLE_HEAD.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = w - c.chars().count();
            if i == 1 {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            }
        }
        l.trim_end().to_string()
    };
    let mut out = line(&TABLE_HEAD.map(String::from));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// results.csv: one row per negotiation, in plan order. Per-party columns go
/// up to the largest party count of the tournament (blank where a scenario
/// has fewer parties).
pub fn results_csv<'a>(rows: impl IntoIterator<Item = &'a Row> + Clone) -> String {
    let max_n = rows.clone().into_iter().map(|r| r.parties.len()).max().unwrap_or(0);
    let mut head: Vec<String> = ["key", "scenario", "repetition", "seed"].map(String::from).to_vec();
    for i in 1..=max_n {
        head.push(format!("party_{i}"));
        head.push(format!("strategy_{i}"));
        head.push(format!("utility_{i}"));
    }
    head.extend(
        [
            "agreement",
            "ended_by",
            "welfare",
            "rounds",
            "distance_to_nash",
            "distance_to_pareto",
            "distance_to_kalai_smorodinsky",
            "distance_to_max_welfare",
        ]
        .map(String::from),
    );
    let mut out = head.join(",");
    out.push('\n');
    let opt = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    for r in rows {
        let mut cells = vec![csv_field(&r.key), csv_field(&r.scenario), r.repetition.to_string(), r.seed.to_string()];
        for i in 0..max_n {
            cells.push(r.parties.get(i).map(|p| csv_field(p)).unwrap_or_default());
            cells.push(r.assignment.get(i).map(|s| csv_field(s)).unwrap_or_default());
            cells.push(r.utilities.get(i).map(|u| u.to_string()).unwrap_or_default());
        }
        cells.push(r.agreement.as_ref().map(|a| csv_field(&a.to_string())).unwrap_or_default());
        cells.push(csv_field(&r.ended_by));
        cells.push(r.welfare.to_string());
        cells.push(r.rounds.to_string());
        cells.push(opt(r.distance_to_nash));
        cells.push(opt(r.distance_to_pareto));
        cells.push(opt(r.distance_to_kalai_smorodinsky));
        cells.push(opt(r.distance_to_max_welfare));
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting where needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
