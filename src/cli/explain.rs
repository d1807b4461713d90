//! One negotiation in plain words, from its [`Explanation`]: the text `run`,
//! `agent` and `session result` print. Wording only; every number comes
//! from the explanation, which the JSON record carries whole.

use crate::core::explain::{Explanation, PartyFacts};

/// Distances to the Nash point below these read as "close to" and "near".
const CLOSE: f64 = 0.05;
const NEAR: f64 = 0.15;

/// A result record as `run` reports one negotiation; the record itself with
/// `as_json`, or where it carries no explanation (a server older than this
/// client).
pub fn print_record(record_json: &str, as_json: bool) {
    let record: Option<serde_json::Value> = serde_json::from_str(record_json).ok();
    let explained = record.as_ref().and_then(|r| {
        let e: Explanation = serde_json::from_value(r.get("explanation")?.clone()).ok()?;
        Some((r, e))
    });
    let Some((r, e)) = explained.filter(|_| !as_json) else {
        outln!("{record_json}");
        return;
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    outln!("{} — session {}", text(&r["scenario"]), text(&r["session"]));
    let strategies = r["strategies"].as_array().cloned().unwrap_or_default();
    for (k, p) in e.parties.iter().enumerate() {
        let s = strategies.get(k).map(text).unwrap_or_default();
        outln!("  {:<16} {s}", p.name);
    }
    print(&e);
}

pub fn print(e: &Explanation) {
    for line in lines(e) {
        outln!("{line}");
    }
}

pub fn lines(e: &Explanation) -> Vec<String> {
    let mut out = Vec::new();
    let width = e.parties.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).max(8);
    out.push(String::new());
    out.push(ending(e));
    if let Some(deal) = &e.deal {
        let w = deal.iter().map(|t| t.issue.chars().count()).max().unwrap_or(0);
        for t in deal {
            out.push(format!("  {:<w$}  {}", t.issue, t.shown));
        }
    }
    out.push(String::new());
    out.push(if e.deal.is_some() {
        "What each party got (utility before discount; 1 is its best outcome):".into()
    } else {
        "What each party got: its walk-away value (utility before discount):".into()
    });
    for p in &e.parties {
        out.extend(party(p, e, width));
    }
    if let Some(b) = &e.balance {
        out.push(String::new());
        let shares: Vec<String> =
            e.parties.iter().filter_map(|p| p.share_of_gain.map(|s| format!("{} {}", p.name, percent(s)))).collect();
        let verdict = match &b.favours {
            Some(who) => format!("the deal favours {who}"),
            None => "the deal is balanced".into(),
        };
        out.push(format!(
            "Balance: {verdict}. Share of its possible gain above its walk-away value: {}.",
            shares.join(", ")
        ));
        if let Some(d) = b.distance_to_nash {
            let words = if d < CLOSE {
                "close to"
            } else if d < NEAR {
                "near"
            } else {
                "far from"
            };
            out.push(format!(
                "  It is {words} the fair point: {d:.3} from the Nash point (the deal that maximises the product"
            ));
            out.push("  of the gains above walk-away values)".to_string());
            if let Some(k) = b.distance_to_kalai_smorodinsky {
                out.push(format!(
                    "  and {k:.3} from the Kalai–Smorodinsky point (where every party gets the same share of its possible gain)."
                ));
            }
        }
    }
    out.push(String::new());
    out.extend(joint_gain(e));
    if !e.analysis_exact {
        out.push(
            "  (the outcome space is too large to enumerate: frontier and fair points are among a sample of it)".into(),
        );
    }
    out
}

fn ending(e: &Explanation) -> String {
    let f = &e.ending;
    let deadline = match (f.deadline_rounds, f.deadline_seconds) {
        (Some(r), Some(s)) => format!("{r} rounds or {s} s"),
        (Some(r), None) => format!("{r} rounds"),
        (None, Some(s)) => format!("{s} s"),
        (None, None) => "none".into(),
    };
    let when = format!("round {} (deadline {deadline}; {} of it used)", f.round, percent(f.relative_time));
    let who = f.party.as_deref().unwrap_or("a party");
    match f.kind.as_str() {
        "agreement" => format!("Deal reached in {when}:"),
        "deadline" => format!("No deal: the deadline passed in {when}."),
        "end-negotiation" => format!("No deal: {who} walked away in {when}."),
        "violation" => format!(
            "No deal: {who} broke the protocol in {when}: {}.",
            f.reason.as_deref().unwrap_or("no reason given")
        ),
        _ => format!("No deal: the negotiation was stopped in {when}: {}.", f.reason.as_deref().unwrap_or("aborted")),
    }
}

fn party(p: &PartyFacts, e: &Explanation, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let pad = " ".repeat(width + 4);
    if e.deal.is_some() {
        let above = if p.above_reservation >= 0.0 {
            format!("{:.2} above its walk-away value ({:.2})", p.above_reservation, p.reservation)
        } else {
            format!("{:.2} BELOW its walk-away value ({:.2})", -p.above_reservation, p.reservation)
        };
        let share =
            p.share_of_gain.map(|s| format!(", {} of the way from there to its best ({:.2})", percent(s), p.best));
        out.push(format!("  {:<width$}  {:.4}: {above}{}", p.name, p.undiscounted, share.unwrap_or_default()));
    } else {
        out.push(format!("  {:<width$}  {:.4}", p.name, p.undiscounted));
    }
    if p.discount < 1.0 {
        out.push(format!(
            "{pad}after discount {:.4}: delay cost it {} (discount {} per deadline, {} of it used)",
            p.utility,
            percent(1.0 - p.discount_factor),
            p.discount,
            percent(e.ending.relative_time)
        ));
    }
    out
}

fn joint_gain(e: &Explanation) -> Vec<String> {
    let g = &e.joint_gain;
    let names: Vec<&str> = e.parties.iter().map(|p| p.name.as_str()).collect();
    let Some(best) = &g.best else {
        return vec![if e.deal.is_some() {
            "No joint gain missed: the deal is on the Pareto frontier (no other deal is better for one party \
             without being worse for another)."
                .into()
        } else {
            "No deal would have given every party more than walking away.".into()
        }];
    };
    let gains: Vec<String> = names.iter().zip(&best.gains).map(|(n, d)| format!("{n} +{d:.2}")).collect();
    let before: f64 = e.parties.iter().map(|p| p.undiscounted).sum();
    let after: f64 = best.utilities.iter().sum();
    let mut out = Vec::new();
    if e.deal.is_some() {
        out.push(format!(
            "Missed joint gain: {} on the Pareto frontier leave nobody worse off and someone better off.",
            deals(g.improving)
        ));
        out.push("The best for all together changes:".into());
        out.extend(best.changes.iter().map(|c| format!("  {c}")));
    } else {
        out.push(format!(
            "Missed joint gain: {} on the Pareto frontier would have given every party at least its walk-away value.",
            deals(g.improving)
        ));
        out.push("The best for all together:".into());
        let w = best.terms.iter().map(|t| t.issue.chars().count()).max().unwrap_or(0);
        for t in &best.terms {
            out.push(format!("  {:<w$}  {}", t.issue, t.shown));
        }
    }
    out.push(format!("  gains: {} (joint utility {before:.2} → {after:.2}, before discount)", gains.join(", ")));
    out
}

fn deals(n: usize) -> String {
    if n == 1 { "1 deal".into() } else { format!("{n} deals") }
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}
