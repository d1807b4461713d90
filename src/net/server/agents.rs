//! One agent stream (`Negotiate`): the parties it joined and the messages
//! it sends, until it ends.
//!
//! A stream may play many parties, of many sessions or several of one;
//! each is a seat keyed by (session, party). What the agent sends goes to
//! the seat it names; what cannot be pinned on a seat (an unknown session,
//! a wrong token, a session this stream does not play) is answered with an
//! `Error` and changes nothing else. The stream ends when the agent closes
//! it, when it falls behind on its messages ([`super::outbound`]), or when
//! it has played no party for the server's unseated-stream timeout (streams
//! of cluster members excepted: a node's link to another idles between
//! sessions).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::Addr;
use actix::dev::SendError;
use tokio_stream::StreamExt;
use tonic::{Request, Status, Streaming};
use tracing::Instrument;

use super::{NegotiationService, lock};
use crate::net::auth::{Caller, same_secret};
use crate::net::external::{AgentAct, Bind, Disconnected, ExternalParty};
use crate::net::outbound::{self, Outbound, OutboundStream};
use crate::net::pb;
use crate::net::registry::Entry;
use crate::net::untrusted::{LogBudget, cut, echo, shown};

/// The parties this stream plays in one session.
type SessionSeats = Vec<(usize, String, Addr<ExternalParty>)>;

/// Sessions this stream played that ended, remembered so that a late Act
/// is answered "finished" rather than "not-joined" (the last few only).
const RECENT: usize = 256;

/// Characters of a `Leave` reason the violation keeps: room for an
/// exception's message, not for a whole traceback.
const LEAVE_REASON_CHARS: usize = 1_000;

/// The stream's seats, and the sessions it recently finished playing.
#[derive(Default)]
struct Table {
    joined: HashMap<String, SessionSeats>,
    ended: std::collections::VecDeque<String>,
}

impl Table {
    /// Forgets seats whose session is over (their endpoints stopped).
    fn sweep(&mut self) {
        let ended = &mut self.ended;
        self.joined.retain(|id, seats| {
            seats.retain(|(_, _, addr)| addr.connected());
            if seats.is_empty() {
                remember(ended, id);
            }
            !seats.is_empty()
        });
    }

    /// The seat an `Act` or `Leave` names: `party` may be empty where the
    /// stream plays one party of the session. Otherwise the error's code
    /// and message.
    fn seat(&self, session_id: &str, party: &str) -> Result<(String, Addr<ExternalParty>), (&'static str, String)> {
        let found = match self.joined.get(session_id) {
            // "finished" only to the stream that played it.
            None if self.ended.iter().any(|id| id == session_id) => {
                return Err(("finished", "the session is over".into()));
            }
            None => return Err(("not-joined", "this stream has not joined that session".into())),
            Some(seats) if party.is_empty() && seats.len() == 1 => &seats[0],
            Some(seats) if party.is_empty() => {
                let n = seats.len();
                return Err((
                    "ambiguous",
                    format!("this stream plays {n} parties of that session: name one in Act.party"),
                ));
            }
            Some(seats) => match seats.iter().find(|(_, name, _)| name == party) {
                Some(s) => s,
                None => return Err(("ambiguous", "this stream does not play that party".into())),
            },
        };
        Ok((found.1.clone(), found.2.clone()))
    }

    fn drop_seat(&mut self, session_id: &str, party: &str) {
        if let Some(seats) = self.joined.get_mut(session_id) {
            seats.retain(|(_, name, _)| name != party);
            if seats.is_empty() {
                self.joined.remove(session_id);
                remember(&mut self.ended, session_id);
            }
        }
    }
}

fn remember(ended: &mut std::collections::VecDeque<String>, id: &str) {
    if ended.len() == RECENT {
        ended.pop_front();
    }
    ended.push_back(id.to_string());
}

static REFUSED_JOIN_LOG: LogBudget = LogBudget::new(10);

/// Why a message names no seat of this stream.
enum Unseated {
    Error(&'static str, String),
}

impl NegotiationService {
    /// Registers a new agent stream and starts serving it; the returned
    /// stream is what the agent reads.
    pub(super) fn open_agent_stream(&self, req: Request<Streaming<pb::AgentMessage>>) -> OutboundStream {
        let caller = Caller::of(&req);
        let conn = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (out, stream) = outbound::channel();
        {
            let mut reg = lock(&self.registry);
            reg.connections.insert(conn, out.clone());
            // Cluster members (other nodes' links) keep streams open between
            // sessions; anonymous agents' streams are capped per address
            // until they join a party.
            if !caller.cluster_member {
                reg.unseated_open(caller.client, conn, self.config.max_unseated_streams_per_client);
            }
        }
        let span = tracing::info_span!("connection", conn, client = %caller.client);
        tokio::spawn(self.clone().serve_agent(conn, caller, req.into_inner(), out).instrument(span));
        stream
    }

    /// Handles one agent stream until it ends.
    async fn serve_agent(self, conn: u64, caller: Caller, mut inbound: Streaming<pb::AgentMessage>, out: Outbound) {
        let config = self.config.clone();
        let mut table = Table::default();
        // Counted as unseated (per client) until the first join.
        let mut unseated = !caller.cluster_member;
        let error = |session_id: &str, party: &str, code: &str, message: String| {
            // A stream over its budget is being cut off; the loop sees it.
            let _ = out.send(pb::server_message::Kind::Error(pb::Error {
                session_id: echo(session_id),
                code: code.to_string(),
                message,
                party: echo(party),
            }));
        };
        let tick = (config.unseated_stream_timeout / 4).max(Duration::from_millis(50));
        let mut idle_since = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval(tick);
        let end_reason = loop {
            let msg = tokio::select! {
                m = inbound.next() => m,
                _ = out.closed() => break if out.is_cut() {
                    "the agent did not read its stream (cut off)".to_string()
                } else {
                    "closed by the server".to_string()
                },
                _ = ticker.tick() => {
                    table.sweep();
                    if !table.joined.is_empty() || caller.cluster_member {
                        idle_since = tokio::time::Instant::now();
                    } else if idle_since.elapsed() >= config.unseated_stream_timeout {
                        let limit = config.unseated_stream_timeout.as_secs_f64();
                        out.end(Status::deadline_exceeded(format!(
                            "this stream played no party for {limit:.0} s and was closed (--unseated-stream-timeout)"
                        )));
                        break format!("no party joined for {limit:.0} s");
                    }
                    continue;
                }
            };
            let msg = match msg {
                None => break "the agent closed its stream".to_string(),
                Some(Err(status)) => break format!("the agent's stream broke: {}", shown(status.message())),
                Some(Ok(m)) => m,
            };
            match msg.kind {
                Some(pb::agent_message::Kind::Join(j)) => {
                    // Forget finished sessions, so a long-lived stream does
                    // not accumulate them.
                    table.sweep();
                    let playing: usize = table.joined.values().map(Vec::len).sum();
                    if playing >= config.max_seats_per_stream {
                        error(
                            &j.session_id,
                            &j.party,
                            "too-many-seats",
                            format!(
                                "this stream plays {playing} parties, the most one stream may (--max-seats-per-stream)"
                            ),
                        );
                        continue;
                    }
                    let seat = self.find_seat(conn, &j);
                    match seat {
                        Err(Unseated::Error(code, message)) => {
                            if let Some(suppressed) = REFUSED_JOIN_LOG.allow() {
                                tracing::warn!(session = %shown(&j.session_id), party = %shown(&j.party), code, suppressed, "join refused");
                            }
                            error(&j.session_id, &j.party, code, message);
                        }
                        Ok((party, addr)) => {
                            // The settings may be large: the seated budget first.
                            out.seated(config.max_message_bytes);
                            match addr.send(Bind(out.clone())).await {
                                Ok(Ok(())) => {
                                    if std::mem::take(&mut unseated) {
                                        lock(&self.registry).unseated_done(caller.client, conn);
                                    }
                                    let seats = table.joined.entry(j.session_id.clone()).or_default();
                                    seats.push((party, j.party.clone(), addr));
                                }
                                Ok(Err(message)) => error(&j.session_id, &j.party, "already-joined", message),
                                Err(_) => error(&j.session_id, &j.party, "finished", "the session is over".into()),
                            }
                        }
                    }
                }
                Some(pb::agent_message::Kind::Act(a)) => match table.seat(&a.session_id, &a.party) {
                    Ok((name, addr)) => match addr.try_send(AgentAct { turn: a.turn, action: a.action }) {
                        Ok(()) => {}
                        // The party's endpoint stops with its session.
                        Err(SendError::Closed(_)) => {
                            table.drop_seat(&a.session_id, &name);
                            error(&a.session_id, &name, "finished", "the session is over".into());
                        }
                        // Acts far ahead of the turns: more than one
                        // per turn is acting out of turn anyway.
                        Err(SendError::Full(_)) => {
                            addr.do_send(Disconnected("sent actions faster than its turns came".into()));
                            table.drop_seat(&a.session_id, &name);
                        }
                    },
                    Err((code, message)) => error(&a.session_id, &a.party, code, message),
                },
                Some(pb::agent_message::Kind::Leave(l)) => match table.seat(&l.session_id, &l.party) {
                    Ok((name, addr)) => {
                        let reason = format!("the agent left: {}", cut(&l.reason, LEAVE_REASON_CHARS));
                        // A closed endpoint means the session is over: the
                        // party's participation ended with it already.
                        let _ = addr.try_send(Disconnected(reason));
                        table.drop_seat(&l.session_id, &name);
                    }
                    Err((code, message)) => error(&l.session_id, &l.party, code, message),
                },
                None => error("", "", "malformed", "a message without content".into()),
            }
        };
        tracing::info!(reason = %end_reason, sessions = table.joined.len(), "agent stream ended");
        for seats in table.joined.into_values() {
            for (_, _, addr) in seats {
                addr.do_send(Disconnected(format!("connection dropped: {end_reason}")));
            }
        }
        let mut reg = lock(&self.registry);
        reg.connections.remove(&conn);
        if unseated {
            reg.unseated_done(caller.client, conn);
        }
    }

    /// The seat a Join names, bound to this connection, or why not.
    fn find_seat(&self, conn: u64, j: &pb::Join) -> Result<(usize, Addr<ExternalParty>), Unseated> {
        let mut reg = lock(&self.registry);
        let live = match reg.sessions.get_mut(&j.session_id) {
            None => return Err(Unseated::Error("not-found", format!("no session `{}`", shown(&j.session_id)))),
            Some(Entry::Done(_)) => return Err(Unseated::Error("finished", "the session is over".into())),
            Some(Entry::Live(l)) => l,
        };
        let seat = match live.seats.iter_mut().find(|s| s.name == j.party) {
            None => {
                let message = format!("no external party `{}` in this session", shown(&j.party));
                return Err(Unseated::Error("not-found", message));
            }
            Some(s) if !same_secret(&s.token, &j.token) => {
                return Err(Unseated::Error("unauthenticated", "wrong token for this party".into()));
            }
            Some(s) if s.bound.is_some() => {
                return Err(Unseated::Error("already-joined", "this party has already been joined".into()));
            }
            Some(s) => s,
        };
        seat.bound = Some(conn);
        Ok((seat.party, seat.addr.clone()))
    }
}
