//! A Rust client for the public API.
//!
//! [`play`] drives any [`Strategy`] as an external agent: it opens one
//! stream, joins every seat it is given (sessions share the stream), and
//! answers turns until each session has finished. An agent is a few lines:
//!
//! ```no_run
//! # async fn agent() -> Result<(), negotium::net::client::ClientError> {
//! use negotium::core::strategy::StrategySpec;
//! use negotium::net::client::{connect, play, Seat};
//! let channel = connect("http://127.0.0.1:7000", None).await?;
//! let seat = Seat::new("SESSION-ID", "investor", "TOKEN", StrategySpec::named("boulware").build().unwrap());
//! let results = play(channel, vec![seat]).await?;
//! println!("{:?}", results[0].utilities);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::convert::{action_from_pb, action_to_pb, domain_from_pb, outcome_from_pb, profile_from_pb};
use super::pb;
use super::pb::negotiation_client::NegotiationClient;
use crate::core::domain::Domain;
use crate::core::protocol::{Deadline, Standing};
use crate::core::strategy::{Observation, PartyContext, Strategy, Turn};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the server refused: {0}")]
    Status(#[from] tonic::Status),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("session {session}: {message}")]
    Refused { session: String, message: String },
}

/// PEM material of a TLS client: the CA that signed the server, an optional
/// client certificate and key (mutual TLS), and an optional name to check
/// the server's certificate against (nodes reached by IP share one name).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTls {
    pub ca: String,
    pub identity: Option<(String, String)>,
    pub domain: Option<String>,
}

impl ClientTls {
    /// Reads the PEM files; errors name the file.
    pub fn read(
        ca: &std::path::Path,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
        domain: Option<String>,
    ) -> Result<Self, String> {
        let read =
            |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()));
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err("a client certificate needs its key, and a key its certificate".into()),
        };
        Ok(Self { ca: read(ca)?, identity, domain })
    }

    pub fn config(&self) -> ClientTlsConfig {
        let mut tls = ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(&self.ca));
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.domain {
            tls = tls.domain_name(name.clone());
        }
        tls
    }

    /// The URL of `host:port` with this TLS setting (`None`: plain text).
    pub fn url(tls: Option<&Self>, addr: &str) -> String {
        if tls.is_some() { format!("https://{addr}") } else { format!("http://{addr}") }
    }
}

/// Opens a channel to a node (`http://` or, with `tls`, `https://`).
pub async fn connect(url: &str, tls: Option<ClientTlsConfig>) -> Result<Channel, ClientError> {
    let mut endpoint = Endpoint::from_shared(url.to_string())?.tcp_nodelay(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect().await?)
}

/// The management client, with the admin token (if any) on every call.
pub fn management(
    channel: Channel,
    admin_token: Option<String>,
) -> NegotiationClient<tonic::service::interceptor::InterceptedService<Channel, AdminToken>> {
    NegotiationClient::with_interceptor(channel, AdminToken(admin_token))
}

/// Adds `authorization: Bearer <token>` when a token is set.
#[derive(Clone)]
pub struct AdminToken(Option<String>);

impl tonic::service::Interceptor for AdminToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            let value = format!("Bearer {t}").parse().map_err(|_| tonic::Status::invalid_argument("bad token"))?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }
}

/// One party to play: which session, which party, its token, and the strategy.
pub struct Seat {
    pub session_id: String,
    pub party: String,
    pub token: String,
    pub strategy: Box<dyn Strategy>,
}

impl Seat {
    pub fn new(session_id: &str, party: &str, token: &str, strategy: Box<dyn Strategy>) -> Self {
        Self { session_id: session_id.into(), party: party.into(), token: token.into(), strategy }
    }
}

struct Playing {
    strategy: Box<dyn Strategy>,
    domain: Option<Arc<Domain>>,
    pending: Vec<Observation>,
}

/// What one server message means for the seats of a stream.
#[derive(Debug)]
pub enum SeatEvent {
    /// Nothing to send.
    Quiet,
    /// Send this to the server (an answer to a turn).
    Reply(pb::AgentMessage),
    /// A seat's session is over; the seat is forgotten.
    Finished { session_id: String, result: Option<pb::SessionResult> },
    /// The server refused a seat (unknown session, wrong token, already
    /// joined or over): it will never finish; the seat is forgotten.
    Refused { session_id: String, message: String },
}

/// The agent's side of one stream: the seats it plays, each with its
/// strategy. Feed it every server message; it answers turns. Seats may be
/// added at any time (a cluster node plays other nodes' parties this way).
#[derive(Default)]
pub struct Seats {
    playing: HashMap<String, Playing>,
}

impl Seats {
    /// Takes a seat; returns the `Join` to send.
    pub fn join(&mut self, seat: Seat) -> pb::AgentMessage {
        let join = pb::Join { session_id: seat.session_id.clone(), party: seat.party, token: seat.token };
        self.playing.insert(seat.session_id, Playing { strategy: seat.strategy, domain: None, pending: Vec::new() });
        pb::AgentMessage { kind: Some(pb::agent_message::Kind::Join(join)) }
    }

    /// No seat is still playing.
    pub fn is_empty(&self) -> bool {
        self.playing.is_empty()
    }

    /// Handles one server message. An error means the server broke the
    /// protocol (the stream is no longer trustworthy).
    pub fn handle(&mut self, msg: pb::ServerMessage) -> Result<SeatEvent, ClientError> {
        let Some(kind) = msg.kind else { return Ok(SeatEvent::Quiet) };
        use pb::server_message::Kind;
        match kind {
            Kind::Settings(s) => {
                let p = self
                    .playing
                    .get_mut(&s.session_id)
                    .ok_or_else(|| ClientError::Protocol("settings for an unknown session".into()))?;
                let domain = Arc::new(
                    domain_from_pb(s.domain.as_ref().ok_or_else(|| bad("settings without a domain"))?).map_err(bad)?,
                );
                let prefs = profile_from_pb(s.profile.as_ref().ok_or_else(|| bad("settings without a profile"))?)
                    .map_err(bad)?;
                let ctx = PartyContext {
                    domain: domain.clone(),
                    preferences: Arc::new(prefs),
                    party: s.party_index as usize,
                    n_parties: s.parties.len(),
                    deadline: Deadline {
                        rounds: (s.deadline_rounds > 0).then_some(s.deadline_rounds),
                        seconds: (s.deadline_seconds > 0.0).then_some(s.deadline_seconds),
                    },
                    seed: s.party_seed,
                    index: None,
                };
                p.strategy.init(&ctx);
                p.domain = Some(domain);
                Ok(SeatEvent::Quiet)
            }
            Kind::ActionDone(a) => {
                let p = self.playing.get_mut(&a.session_id).ok_or_else(|| bad("an action for an unknown session"))?;
                let domain = p.domain.clone().ok_or_else(|| bad("an action before the settings"))?;
                let action = action_from_pb(&domain, a.action.as_ref()).map_err(bad)?;
                p.pending.push(Observation { party: a.party as usize, action, time: a.time });
                Ok(SeatEvent::Quiet)
            }
            Kind::YourTurn(t) => {
                let p = self.playing.get_mut(&t.session_id).ok_or_else(|| bad("a turn for an unknown session"))?;
                let domain = p.domain.clone().ok_or_else(|| bad("a turn before the settings"))?;
                for obs in p.pending.drain(..) {
                    p.strategy.observe(&obs);
                }
                let standing = match &t.standing_offer {
                    Some(o) => Some(Standing {
                        offer: outcome_from_pb(&domain, o).map_err(bad)?,
                        proposer: t.proposer as usize,
                    }),
                    None => None,
                };
                let action = p.strategy.act(&Turn { round: t.round, time: t.time, standing });
                let act =
                    pb::Act { session_id: t.session_id, turn: t.turn, action: Some(action_to_pb(&domain, &action)) };
                Ok(SeatEvent::Reply(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Act(act)) }))
            }
            Kind::Finished(f) => Ok(match self.playing.remove(&f.session_id) {
                Some(_) => SeatEvent::Finished { session_id: f.session_id, result: f.result },
                None => SeatEvent::Quiet,
            }),
            Kind::Error(e) => {
                // A refused join means this seat will never finish.
                if matches!(e.code.as_str(), "not-found" | "unauthenticated" | "already-joined" | "finished")
                    && self.playing.remove(&e.session_id).is_some()
                {
                    return Ok(SeatEvent::Refused { session_id: e.session_id, message: e.message });
                }
                tracing::warn!(session = %e.session_id, code = %e.code, "server: {}", e.message);
                Ok(SeatEvent::Quiet)
            }
        }
    }
}

/// Plays every seat over one stream; returns each session's result in the
/// order of `seats`.
pub async fn play(channel: Channel, seats: Vec<Seat>) -> Result<Vec<pb::SessionResult>, ClientError> {
    let mut client = NegotiationClient::new(channel).max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::unbounded_channel::<pb::AgentMessage>();
    let order: Vec<String> = seats.iter().map(|s| s.session_id.clone()).collect();
    let mut table = Seats::default();
    for seat in seats {
        tx.send(table.join(seat)).expect("receiver alive");
    }
    let mut results: HashMap<String, pb::SessionResult> = HashMap::new();
    let mut inbound = client.negotiate(UnboundedReceiverStream::new(rx)).await?.into_inner();
    while !table.is_empty() {
        let Some(msg) = inbound.next().await else {
            return Err(ClientError::Protocol("the server closed the stream".into()));
        };
        match table.handle(msg?)? {
            SeatEvent::Quiet => {}
            SeatEvent::Reply(m) => {
                let _ = tx.send(m);
            }
            SeatEvent::Finished { session_id, result } => {
                results.insert(session_id, result.unwrap_or_default());
            }
            SeatEvent::Refused { session_id, message } => {
                return Err(ClientError::Refused { session: session_id, message });
            }
        }
    }
    Ok(order.into_iter().map(|id| results.remove(&id).unwrap_or_default()).collect())
}

fn bad(message: impl ToString) -> ClientError {
    ClientError::Protocol(message.to_string())
}
