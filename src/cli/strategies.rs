//! `negotium strategies`: every strategy a scenario, tournament or
//! `--strategy` may name, with the native agents' parameters.

use std::fmt::Write as _;

use super::CliError;
use crate::core::agents::AGENTS;

#[derive(clap::Args)]
pub struct StrategiesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn strategies(args: StrategiesArgs) -> Result<(), CliError> {
    if args.json {
        let agents: Vec<_> = AGENTS
            .iter()
            .map(|a| {
                let params: Vec<_> = a
                    .params
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name, "default": p.default, "min": p.min, "max": p.max,
                            "integer": p.integer, "doc": p.doc,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": a.name, "original": a.original, "year": a.year,
                    "summary": a.summary, "source": a.source, "params": params,
                })
            })
            .collect();
        let out = serde_json::json!({ "built_in": crate::core::strategy::STRATEGY_NAMES, "agents": agents });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| CliError::Failure(e.into()))?);
        return Ok(());
    }
    let mut text = String::from("Built-in strategies (README, \"Strategies\"):\n  ");
    text.push_str(&crate::core::strategy::STRATEGY_NAMES.join(", "));
    text.push_str("\n  and { python = \"module:Class\" } for any NegMAS negotiator, through the agent host\n\n");
    text.push_str("Native agents (README, \"Native agents\"), e.g. { type = \"hardheaded\", e = 0.1 }:\n");
    for a in AGENTS {
        let _ =
            writeln!(text, "\n  {} ({}, {})\n    {}\n    after: {}", a.name, a.original, a.year, a.summary, a.source);
        for p in a.params {
            let kind = if p.integer { "whole number" } else { "number" };
            let _ = writeln!(text, "    {} = {} ({kind} in [{}, {}]): {}", p.name, p.default, p.min, p.max, p.doc);
        }
    }
    print!("{text}");
    Ok(())
}
