//! An external agent in Rust: plays one party of a session hosted by
//! `negotium serve`, with any strategy (here a built-in one; implement
//! `negotium::core::strategy::Strategy` for your own).
//!
//!     cargo run --example rust_agent -- 127.0.0.1:7000 SESSION_ID PARTY TOKEN [STRATEGY]

use negotium::core::strategy::StrategySpec;
use negotium::net::client::{Seat, connect, play};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, session, party, token] = [0, 1, 2, 3].map(|k| args.get(k).cloned().unwrap_or_default());
    let strategy = StrategySpec::named(args.get(4).map_or("boulware", String::as_str)).build()?;
    let channel = connect(&server, None).await?;
    let results = play(channel, vec![Seat::new(&session, &party, &token, strategy)]).await?;
    let r = &results[0];
    println!("{}: ended by {}, utilities {:?}", r.session_id, r.ended_by, r.utilities);
    Ok(())
}
