//! One negotiation in the utility space of its first two parties.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::input::Record;
use super::space::Space;
use super::style::{
    AGREEMENT, CLOUD, DISAGREEMENT, FRONTIER, JOINT_GAIN, KALAI, MUTED, Marker, NASH, PARTY_MARKERS, bold, clip, font,
    left, left_top, marker, mesh, pair, party_color, thousands, wrap,
};

const W: u32 = 1240;
const H: u32 = 900;
const HEADER: u32 = 100;
const SIDE: u32 = 380;

type Res = Result<(), Box<dyn std::error::Error>>;

/// The plot as SVG text.
pub fn draw(record: &Record, id: &str, space: Option<&Space>, notes: &[String]) -> Result<String, String> {
    let mut svg = String::new();
    draw_into(&mut svg, record, id, space, notes).map_err(|e| format!("drawing negotiation {id}: {e}"))?;
    Ok(svg)
}

/// Offers of one party, projected on the first two parties' utilities.
fn offers_of(record: &Record, party: usize) -> Vec<(f64, f64)> {
    record
        .trace
        .iter()
        .filter(|t| t.party == party)
        .filter_map(|t| t.utilities.as_ref())
        .filter(|u| u.len() >= 2)
        .map(|u| (u[0], u[1]))
        .collect()
}

fn ending(record: &Record) -> String {
    let name = |p: Option<usize>| p.and_then(|p| record.parties.get(p)).cloned().unwrap_or_else(|| "?".into());
    let rounds =
        record.rounds.map(|r| format!(" after {r} round{}", if r == 1 { "" } else { "s" })).unwrap_or_default();
    let offers = record.offers.map(|o| format!(" ({o} offers)")).unwrap_or_default();
    let reason = || {
        record
            .violation
            .as_ref()
            .and_then(|v| v.get("reason"))
            .and_then(|r| r.as_str())
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    };
    match record.ended_by.as_deref() {
        Some("agreement") => format!("agreement{rounds}{offers}"),
        _ if record.agreement.is_some() => format!("agreement{rounds}{offers}"),
        Some("deadline") => format!("no agreement: deadline reached{rounds}{offers}"),
        Some("end-negotiation") => format!("no agreement: {} walked away{rounds}", name(record.ended_by_party)),
        Some("violation") => format!("no agreement: protocol violation by {}{}", name(record.ended_by_party), reason()),
        Some("aborted") => format!("aborted{rounds}{}", reason()),
        Some(other) => format!("no agreement: {other}{rounds}"),
        None => "no agreement".into(),
    }
}

/// The utility plane: first party across, second up.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;

fn draw_into(svg: &mut String, record: &Record, id: &str, space: Option<&Space>, notes: &[String]) -> Res {
    let root = SVGBackend::with_string(svg, (W, H)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER);
    let (plot_area, side) = body.split_horizontally(W - SIDE);
    draw_header(&header, record, id, space)?;
    let mut chart = axes(&plot_area, record, space)?;
    // Drawn in layers, each over the last: outcomes, offers, reference
    // points and the agreement on top.
    let mut legend: Vec<(Legend, String)> = Vec::new();
    if let Some(s) = space {
        draw_space(&mut chart, s, record.parties.len() > 2, &mut legend)?;
    }
    draw_offers(&mut chart, record, &mut legend)?;
    if let Some(s) = space {
        draw_references(&chart, s, &mut legend)?;
    }
    let point = record.point();
    let gain = record.explanation.as_ref().and_then(|e| e.joint_gain.best.as_ref());
    if let Some(best) = gain.filter(|b| b.utilities.len() >= 2) {
        let at = (best.utilities[0], best.utilities[1]);
        marker(chart.plotting_area(), at, Marker::Square, JOINT_GAIN, 9)?;
        legend.push((Legend::Marker(Marker::Square, JOINT_GAIN, 7), format!("missed joint gain {}", pair(at.0, at.1))));
    }
    if record.agreement.is_some() && point.len() >= 2 {
        marker(chart.plotting_area(), (point[0], point[1]), Marker::Ring, AGREEMENT, 12)?;
        legend.push((Legend::Marker(Marker::Ring, AGREEMENT, 9), format!("agreement {}", pair(point[0], point[1]))));
    } else {
        legend.push((Legend::Blank, "no agreement".into()));
    }
    draw_side(&side, &legend, &facts(record, space, notes))?;
    root.present()?;
    Ok(())
}

/// Scenario and negotiation, strategies, ending.
fn draw_header(header: &Area<'_>, record: &Record, id: &str, space: Option<&Space>) -> Res {
    let approximate = space.is_some_and(|s| !s.analysis.exact) || record.analysis_exact == Some(false);
    let scenario = if record.scenario.is_empty() { "negotiation".to_string() } else { record.scenario.clone() };
    let mut title = format!("{scenario} — negotiation {id}");
    if approximate {
        title.push_str("  (approximate: sampled outcome space)");
    }
    header.draw(&Text::new(clip(&title, 90), (24, 16), left_top(bold(22.0))))?;
    let strategies: Vec<String> = record
        .parties
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{p}: {}", record.strategies.get(i).map(String::as_str).unwrap_or("?")))
        .collect();
    header.draw(&Text::new(
        clip(&strategies.join("\u{a0}\u{a0} vs \u{a0}\u{a0}"), 150),
        (24, 50),
        left_top(font(15.0)),
    ))?;
    header.draw(&Text::new(clip(&ending(record), 150), (24, 74), left_top(font(15.0).color(&MUTED))))?;
    Ok(())
}

/// Axes: the unit square, widened to whatever is drawn.
fn axes<'a, 'b>(
    plot_area: &'a Area<'b>,
    record: &Record,
    space: Option<&Space>,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let (a, b) = (&record.parties[0], &record.parties[1]);
    let mut xs: Vec<f64> = vec![0.0, 1.0];
    let mut ys: Vec<f64> = vec![0.0, 1.0];
    let mut see = |p: &[f64]| {
        if p.len() >= 2 && p[0].is_finite() && p[1].is_finite() {
            xs.push(p[0]);
            ys.push(p[1]);
        }
    };
    if let Some(s) = space {
        for &(x, y) in &s.cloud {
            see(&[x, y]);
        }
    }
    for t in &record.trace {
        if let Some(u) = &t.utilities {
            see(u);
        }
    }
    see(record.point());
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = (hi - lo) * 0.03;
        (lo - pad)..(hi + pad)
    };
    let mut chart = ChartBuilder::on(plot_area)
        .margin_top(10)
        .margin_left(16)
        .margin_right(24)
        .margin_bottom(16)
        .x_label_area_size(56)
        .y_label_area_size(70)
        .build_cartesian_2d(range(&xs), range(&ys))?;
    mesh(&mut chart)
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_desc(format!("utility of {a} (before discount)"))
        .y_desc(format!("utility of {b} (before discount)"))
        .draw()?;
    Ok(chart)
}

/// Every outcome, faint, and the Pareto frontier: a line for two parties;
/// with more, the projected Pareto-optimal outcomes are no frontier.
fn draw_space(chart: &mut Chart<'_, '_>, s: &Space, multilateral: bool, legend: &mut Vec<(Legend, String)>) -> Res {
    chart.draw_series(s.cloud.iter().map(|&(x, y)| Circle::new((x, y), 2, CLOUD.mix(0.45).filled())))?;
    let label = if s.cloud_sampled {
        let of = if s.outcomes.starts_with("infinite") { "an infinite space".into() } else { s.outcomes.clone() };
        format!("outcomes (a sample of {} of {of})", thousands(s.cloud_from))
    } else {
        format!("all {} outcomes", thousands(s.cloud_from))
    };
    legend.push((Legend::Marker(Marker::Dot, CLOUD, 4), label));

    let front: Vec<(f64, f64)> =
        s.analysis.pareto.iter().filter(|p| p.utilities.len() >= 2).map(|p| (p.utilities[0], p.utilities[1])).collect();
    if multilateral {
        chart.draw_series(front.iter().map(|&p| Circle::new(p, 2, FRONTIER.mix(0.8).filled())))?;
        legend.push((
            Legend::Marker(Marker::Dot, FRONTIER, 3),
            format!("Pareto-optimal outcomes, projected ({})", thousands(front.len())),
        ));
    } else {
        let mut line = front.clone();
        line.sort_by(|p, q| p.0.total_cmp(&q.0).then(q.1.total_cmp(&p.1)));
        chart.draw_series(LineSeries::new(line, FRONTIER.stroke_width(2)))?;
        chart.draw_series(front.iter().map(|&p| Circle::new(p, 2, FRONTIER.filled())))?;
        let sampled = if s.analysis.exact { "" } else { "sampled, " };
        legend
            .push((Legend::Line(FRONTIER), format!("Pareto frontier ({sampled}{} outcomes)", thousands(front.len()))));
    }
    Ok(())
}

/// Each party's offers, in order, the first one labelled.
fn draw_offers(chart: &mut Chart<'_, '_>, record: &Record, legend: &mut Vec<(Legend, String)>) -> Res {
    for (i, party) in record.parties.iter().enumerate() {
        let offers = offers_of(record, i);
        let color = party_color(i);
        let m = PARTY_MARKERS[i % PARTY_MARKERS.len()];
        // A repeated offer is one point: the path skips repeats (a path of
        // one point cannot be stroked), the markers are drawn once.
        let mut path = offers.clone();
        path.dedup();
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<(f64, f64)> =
            offers.iter().copied().filter(|p| seen.insert((p.0.to_bits(), p.1.to_bits()))).collect();
        if !offers.is_empty() {
            if path.len() >= 2 {
                chart.draw_series(LineSeries::new(path, color.mix(0.5).stroke_width(1)))?;
            }
            for &p in &distinct {
                marker(chart.plotting_area(), p, m, color, 4)?;
            }
            label_first_offer(chart, offers[0], color)?;
        }
        let count = if distinct.len() * 2 < offers.len() {
            format!("{}, {} distinct", offers.len(), distinct.len())
        } else {
            offers.len().to_string()
        };
        legend.push((Legend::Series(m, color), format!("{party}'s offers ({count})")));
    }
    Ok(())
}

/// "first offer" beside it, on the side with room.
fn label_first_offer(chart: &Chart<'_, '_>, first: (f64, f64), color: RGBColor) -> Res {
    let x_span = chart.x_range();
    let right_half = first.0 > x_span.start + 0.75 * (x_span.end - x_span.start);
    let (dx, h) = if right_half { (-9, HPos::Right) } else { (9, HPos::Left) };
    let style = bold(12.0).color(&color).pos(Pos::new(h, VPos::Center));
    // A light box behind the label keeps it readable over markers
    // (about 0.66 em per character of bold DejaVu Sans).
    let w = 8 * "first offer".len() as i32 + 4;
    let (x0, x1) = if right_half { (dx - w, dx + 2) } else { (dx - 2, dx + w) };
    chart.plotting_area().draw(
        &(EmptyElement::at(first)
            + Rectangle::new([(x0, -21), (x1, -3)], WHITE.mix(0.8).filled())
            + Text::new("first offer", (dx, -12), style)),
    )?;
    Ok(())
}

/// The disagreement point, Kalai–Smorodinsky and Nash (or that there is none).
fn draw_references(chart: &Chart<'_, '_>, s: &Space, legend: &mut Vec<(Legend, String)>) -> Res {
    let an = &s.analysis;
    if an.disagreement.len() >= 2 {
        let d = (an.disagreement[0], an.disagreement[1]);
        marker(chart.plotting_area(), d, Marker::Cross, DISAGREEMENT, 6)?;
        legend.push((Legend::Marker(Marker::Cross, DISAGREEMENT, 6), format!("disagreement {}", pair(d.0, d.1))));
    }
    match &an.kalai_smorodinsky {
        Some(k) => {
            let k = (k.utilities[0], k.utilities[1]);
            marker(chart.plotting_area(), k, Marker::Frame, KALAI, 10)?;
            legend.push((Legend::Marker(Marker::Frame, KALAI, 8), format!("Kalai–Smorodinsky {}", pair(k.0, k.1))));
        }
        None => legend.push((Legend::Marker(Marker::Frame, KALAI, 8), "Kalai–Smorodinsky: none".into())),
    }
    match &an.nash {
        Some(n) => {
            let n = (n.utilities[0], n.utilities[1]);
            marker(chart.plotting_area(), n, Marker::Diamond, NASH, 8)?;
            legend.push((Legend::Marker(Marker::Diamond, NASH, 7), format!("Nash {}", pair(n.0, n.1))));
        }
        None => legend.push((Legend::Marker(Marker::Diamond, NASH, 7), "Nash: none".into())),
    }
    Ok(())
}

/// The numbers and notes under the legend.
fn facts(record: &Record, space: Option<&Space>, notes: &[String]) -> Vec<String> {
    let point = record.point();
    let mut facts: Vec<String> = Vec::new();
    if let Some(deal) = record.explanation.as_ref().and_then(|e| e.deal.as_ref()) {
        facts.extend(deal.iter().map(|t| format!("{}: {}", t.issue, t.shown)));
    }
    facts.push("utilities, frontier and fair points: before discount".into());
    let dist = |d: Option<f64>| d.map(|d| format!("{d:.4}")).unwrap_or_else(|| "n/a".into());
    if record.distance_to_nash.is_some() || record.distance_to_pareto.is_some() {
        facts.push(format!("distance to Nash: {}", dist(record.distance_to_nash)));
        facts.push(format!("distance to Pareto: {}", dist(record.distance_to_pareto)));
        facts.push(format!("distance to K–S: {}", dist(record.distance_to_kalai_smorodinsky)));
    }
    if let Some(e) = record.pareto_efficient {
        facts.push(format!("Pareto-efficient: {}", if e { "yes" } else { "no" }));
    }
    if !record.utilities.is_empty() && record.utilities != point {
        let u: Vec<String> = record.utilities.iter().map(|u| format!("{u:.3}")).collect();
        facts.push(format!("after discount: {}", u.join(", ")));
    }
    if record.parties.len() > 2 && point.len() > 2 {
        let u: Vec<String> = record.parties.iter().zip(point).map(|(p, u)| format!("{p} {u:.3}")).collect();
        facts.push(format!("utilities: {}", u.join(", ")));
    }
    if record.trace_truncated {
        facts.push("the trace was truncated: later offers are not shown".into());
    }
    if record.trace.is_empty() {
        facts.push("the record has no trace: no offers to show".into());
    }
    if let Some(s) = space {
        if let Some(note) = &s.analysis.note {
            facts.push(note.clone());
        }
    } else if record.analysis_exact == Some(false) {
        facts.push("approximate: the run analysed a sample of the outcome space".into());
    }
    facts.extend(notes.iter().cloned());
    facts
}

/// Side panel: the legend, then the facts, as many lines as fit.
fn draw_side(side: &Area<'_>, legend: &[(Legend, String)], facts: &[String]) -> Res {
    let mut y = 24;
    side.draw(&Text::new("Legend", (12, y), left(bold(16.0))))?;
    y += 30;
    for (glyph, label) in legend {
        draw_glyph(side, (30, y), glyph)?;
        for (k, line) in wrap(label, 34).iter().enumerate() {
            side.draw(&Text::new(line.clone(), (56, y + 20 * k as i32), left(font(14.0))))?;
        }
        y += 20 * wrap(label, 34).len().max(1) as i32 + 10;
    }
    y += 10;
    for fact in facts {
        for line in wrap(fact, 44) {
            if y > (H - HEADER) as i32 - 16 {
                break;
            }
            side.draw(&Text::new(line, (12, y), left(font(13.0).color(&MUTED))))?;
            y += 18;
        }
        y += 6;
    }
    Ok(())
}

enum Legend {
    Marker(Marker, RGBColor, i32),
    Line(RGBColor),
    /// A party's offers: a line with its marker.
    Series(Marker, RGBColor),
    Blank,
}

fn draw_glyph<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, at: (i32, i32), g: &Legend) -> Res
where
    DB::ErrorType: 'static,
{
    let (x, y) = at;
    match *g {
        Legend::Marker(m, c, r) => marker(area, at, m, c, r)?,
        Legend::Line(c) => area.draw(&PathElement::new(vec![(x - 16, y), (x + 16, y)], c.stroke_width(2)))?,
        Legend::Series(m, c) => {
            area.draw(&PathElement::new(vec![(x - 16, y), (x + 16, y)], c.mix(0.7).stroke_width(2)))?;
            marker(area, (x - 10, y), m, c, 4)?;
            marker(area, (x + 10, y), m, c, 4)?;
        }
        Legend::Blank => {}
    }
    Ok(())
}
