//! A tournament's strategies, side by side: mean ± standard error of own
//! utility, agreement rate, social welfare and distance to Nash. Each party
//! of each negotiation is one observation of its strategy (a strategy that
//! meets itself counts twice). Everything comes from results.jsonl.

use std::collections::{BTreeSet, HashMap};

use plotters::prelude::*;

use super::input::{Score, id_text};
use super::style::{MUTED, bold, clip, font, left, left_top, party_color, thousands};

/// Running mean and variance (Welford).
#[derive(Clone, Copy, Debug, Default)]
pub struct Acc {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Acc {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Standard error of the mean (0 for a single observation).
    fn se(&self) -> f64 {
        if self.n < 2 { 0.0 } else { (self.m2 / (self.n - 1) as f64).sqrt() / (self.n as f64).sqrt() }
    }
}

#[derive(Clone, Debug, Default)]
struct Stats {
    /// Order of first appearance.
    first: usize,
    utility: Acc,
    agreement: Acc,
    welfare: Acc,
    nash: Acc,
}

/// Per-strategy sums over a results file.
#[derive(Default)]
pub struct Tally {
    strategies: HashMap<String, Stats>,
    negotiations: usize,
    scenarios: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl Tally {
    pub fn add(&mut self, s: &Score) -> Result<(), String> {
        if s.utilities.len() != s.parties.len() {
            return Err(format!("{} utilities for {} parties", s.utilities.len(), s.parties.len()));
        }
        self.negotiations += 1;
        self.scenarios.insert(s.scenario.clone());
        if let Some(t) = &s.tournament {
            let name = match t {
                serde_json::Value::Object(o) => o.get("name").map(id_text).unwrap_or_else(|| t.to_string()),
                other => id_text(other),
            };
            self.names.insert(name);
        }
        let agreed = if s.agreement.is_some() { 1.0 } else { 0.0 };
        let welfare = s.welfare.unwrap_or_else(|| s.utilities.iter().sum());
        for (i, &u) in s.utilities.iter().enumerate() {
            let name = s.strategy_of(i).ok_or_else(|| format!("no strategy for party {}", s.parties[i]))?;
            let next = self.strategies.len();
            let st = self.strategies.entry(name).or_insert_with(|| Stats { first: next, ..Default::default() });
            st.utility.add(u);
            st.agreement.add(agreed);
            st.welfare.add(welfare);
            if let Some(d) = s.distance_to_nash {
                st.nash.add(d);
            }
        }
        Ok(())
    }

    /// Strategies by mean own utility, best first.
    fn ranked(&self) -> Vec<(&String, &Stats)> {
        let mut v: Vec<_> = self.strategies.iter().collect();
        v.sort_by(|a, b| {
            let (x, y) = (a.1.utility.mean.max(f64::MIN), b.1.utility.mean.max(f64::MIN));
            y.total_cmp(&x).then(a.1.first.cmp(&b.1.first))
        });
        v
    }

    pub fn print(&self) {
        outln!(
            "{} negotiation(s), {} strateg{} (mean ± standard error per participation)",
            self.negotiations,
            self.strategies.len(),
            if self.strategies.len() == 1 { "y" } else { "ies" }
        );
        let width = self.strategies.keys().map(|k| k.chars().count()).max().unwrap_or(8).clamp(8, 40);
        outln!(
            "  {:<width$} {:>6}  {:>15}  {:>15}  {:>15}  {:>15}",
            "strategy",
            "n",
            "own utility",
            "agreement rate",
            "social welfare",
            "dist. to Nash"
        );
        let cell = |a: &Acc| match a.mean() {
            Some(m) => format!("{m:.3} ± {:.3}", a.se()),
            None => "n/a".into(),
        };
        for (name, s) in self.ranked() {
            outln!(
                "  {:<width$} {:>6}  {:>15}  {:>15}  {:>15}  {:>15}",
                clip(name, 40),
                s.utility.n,
                cell(&s.utility),
                cell(&s.agreement),
                cell(&s.welfare),
                cell(&s.nash)
            );
        }
    }
}

const W: u32 = 1400;
const HEADER: u32 = 96;

type Res = Result<(), Box<dyn std::error::Error>>;

/// The four panels as SVG text.
pub fn draw(t: &Tally) -> Result<String, String> {
    let mut svg = String::new();
    draw_into(&mut svg, t).map_err(|e| format!("drawing the tournament: {e}"))?;
    Ok(svg)
}

struct Panel {
    title: &'static str,
    get: fn(&Stats) -> &Acc,
    /// Bars start at 0; the axis reaches at least this far.
    at_least: f64,
}

const PANELS: [Panel; 4] = [
    Panel { title: "own utility (after discount)", get: |s| &s.utility, at_least: 1.0 },
    Panel { title: "agreement rate", get: |s| &s.agreement, at_least: 1.0 },
    Panel { title: "social welfare (sum of utilities, after discount)", get: |s| &s.welfare, at_least: 0.0 },
    Panel { title: "distance to Nash (before discount; lower is better)", get: |s| &s.nash, at_least: 0.0 },
];

fn draw_into(svg: &mut String, t: &Tally) -> Res {
    let ranked = t.ranked();
    let k = ranked.len().max(1);
    let panel_h = (90 + 34 * k as u32).max(260);
    let h = HEADER + 2 * panel_h + 10;
    let root = SVGBackend::with_string(svg, (W, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER);

    let name = if t.names.is_empty() {
        String::new()
    } else {
        format!(" {}", t.names.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    let scenarios = t.scenarios.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>();
    let title = format!(
        "Tournament{name}: {} negotiations, {} strategies, {} scenario{}",
        thousands(t.negotiations),
        ranked.len(),
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" }
    );
    header.draw(&Text::new(clip(&title, 110), (24, 16), left_top(bold(22.0))))?;
    header.draw(&Text::new(
        clip(&format!("scenarios: {}", scenarios.join(", ")), 170),
        (24, 48),
        left_top(font(14.0).color(&MUTED)),
    ))?;
    header.draw(&Text::new(
        "bars: mean ± standard error over each strategy's participations (one per party per negotiation); \
         own utility is the reservation value where there is no agreement",
        (24, 70),
        left_top(font(14.0).color(&MUTED)),
    ))?;

    let longest = ranked.iter().map(|(n, _)| n.chars().count().min(32)).max().unwrap_or(8);
    let label_w = (longest as u32 * 8 + 60).clamp(90, 320);
    let colors: HashMap<&String, RGBColor> = ranked.iter().map(|(n, s)| (*n, party_color(s.first))).collect();
    let names: Vec<String> = ranked.iter().map(|(n, s)| format!("{} (n={})", clip(n, 32), s.utility.n)).collect();

    for (panel, area) in PANELS.iter().zip(body.split_evenly((2, 2))) {
        let stats: Vec<Option<(f64, f64)>> =
            ranked.iter().map(|(_, s)| (panel.get)(s).mean().map(|m| (m, (panel.get)(s).se()))).collect();
        let hi = stats.iter().flatten().map(|(m, se)| m + se).fold(panel.at_least, f64::max);
        let lo = stats.iter().flatten().map(|(m, se)| m - se).fold(0.0, f64::min);
        let hi = if hi - lo <= 0.0 { lo + 1.0 } else { hi };
        // Room on the right for the value labels.
        let x_range = lo..hi + (hi - lo) * 0.32;
        // 0..=k-1: one segment per strategy.
        let y_range = (0..k as i32 - 1).into_segmented();
        let mut chart = ChartBuilder::on(&area)
            .caption(panel.title, bold(17.0))
            .margin(14)
            .margin_right(28)
            .x_label_area_size(36)
            .y_label_area_size(label_w)
            .build_cartesian_2d(x_range, y_range)?;
        // Row j from the bottom holds the strategy ranked k-1-j.
        let row_name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(j) | SegmentValue::Exact(j) => {
                usize::try_from(k as i64 - 1 - *j as i64).ok().and_then(|i| names.get(i)).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(k)
            .y_label_formatter(&row_name)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .x_labels(6)
            .label_style(font(13.0))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, ((name, _), s)) in ranked.iter().zip(&stats).enumerate() {
            let j = (k - 1 - i) as i32;
            let mid = || SegmentValue::CenterOf(j);
            let Some((m, se)) = *s else {
                chart.plotting_area().draw(
                    &(EmptyElement::at((0.0, mid())) + Text::new("n/a", (6, 0), left(font(13.0).color(&MUTED)))),
                )?;
                continue;
            };
            let color = colors[name];
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(j)), (m, SegmentValue::Exact(j + 1))],
                color.mix(0.85).filled(),
            );
            let gap = ((panel_h - 90) / k as u32 / 5).clamp(3, 14);
            bar.set_margin(gap, gap, 0, 0);
            if m != 0.0 {
                chart.draw_series([bar])?;
            }
            if se > 0.0 {
                let style = BLACK.stroke_width(2);
                chart.draw_series([PathElement::new(vec![(m - se, mid()), (m + se, mid())], style)])?;
                for x in [m - se, m + se] {
                    chart
                        .plotting_area()
                        .draw(&(EmptyElement::at((x, mid())) + PathElement::new(vec![(0, -6), (0, 6)], style)))?;
                }
            }
            let label = if se > 0.0 { format!("{m:.3} ± {se:.3}") } else { format!("{m:.3}") };
            let x = (m + se).max(0.0);
            chart.plotting_area().draw(&(EmptyElement::at((x, mid())) + Text::new(label, (8, 0), left(font(13.0)))))?;
        }
    }
    root.present()?;
    Ok(())
}
