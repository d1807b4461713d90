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
//! let channel = connect("127.0.0.1:7000", None).await?;
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
    /// An address that names no server (`--server`, `--ps`, a node).
    #[error("{0}")]
    Address(String),
    /// The server could not be reached: where, and the cause (the error
    /// chain's own words, each once).
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
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
}

/// The URL a user's server address means, for every address a client
/// dials (`--server`, `worker --ps`, cluster nodes, a node's peers): a bare
/// `HOST:PORT` gets `https://` when the client has TLS settings, else
/// `http://`; a URL is taken as given, as long as its scheme agrees with
/// the TLS settings (a plain `http://` with a CA would silently not check
/// the server; `https://` without one would fail deep in the handshake).
pub fn endpoint_url(addr: &str, tls: bool) -> Result<String, String> {
    let addr = addr.trim();
    let shown = crate::net::untrusted::shown(addr);
    let (scheme, rest) = match addr.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ((if tls { "https" } else { "http" }).to_string(), addr),
    };
    match (scheme.as_str(), tls) {
        ("http", true) => {
            return Err(format!(
                "`{shown}`: http:// is plain text, but TLS options were given: write https:// or HOST:PORT"
            ));
        }
        ("https", false) => {
            return Err(format!("`{shown}`: https:// needs the CA that signed the server (--ca), or write http://"));
        }
        ("http" | "https", _) => {}
        (other, _) => {
            return Err(format!("`{shown}`: unknown scheme `{other}://`; write HOST:PORT, http:// or https://"));
        }
    }
    let authority = rest.trim_end_matches('/');
    let port_ok =
        authority.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if authority.is_empty() || authority.contains(['/', ' ', '?', '#', '@']) || !port_ok {
        return Err(format!("`{shown}` is not a server address: write HOST:PORT (e.g. 127.0.0.1:7000)"));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Opens a channel to a server at `addr` (`HOST:PORT` or a URL, see
/// [`endpoint_url`]; https where `tls` is given).
pub async fn connect(addr: &str, tls: Option<ClientTlsConfig>) -> Result<Channel, ClientError> {
    let url = endpoint_url(addr, tls.is_some()).map_err(ClientError::Address)?;
    let failed = |e: tonic::transport::Error| ClientError::Connect { url: url.clone(), reason: causes(&e) };
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(failed)?.tcp_nodelay(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(failed)?;
    }
    endpoint.connect().await.map_err(failed)
}

/// An error and its sources, each message once: tonic's "transport error"
/// wraps hyper's wrapper of the real cause ("tcp connect error: Connection
/// refused", "dns error: failed to lookup address information: …"), and
/// each layer may repeat the one below.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        let generic = matches!(text.as_str(), "transport error" | "client error (Connect)");
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}

/// The management client, with the admin token (if any) on every call.
pub fn management(
    channel: Channel,
    admin_token: Option<String>,
) -> NegotiationClient<tonic::service::interceptor::InterceptedService<Channel, AdminToken>> {
    // Results carry their whole trace: far above tonic's 4 MiB default.
    NegotiationClient::with_interceptor(channel, AdminToken(admin_token)).max_decoding_message_size(64 << 20)
}

/// Adds `authorization: Bearer <token>` when a token is set (the admin
/// token for management calls, a cluster token for launchers and links).
#[derive(Clone)]
pub struct AdminToken(Option<String>);

impl AdminToken {
    pub fn new(token: Option<String>) -> Self {
        Self(token)
    }
}

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

    pub fn key(&self) -> SeatKey {
        SeatKey { session_id: self.session_id.clone(), party: self.party.clone() }
    }
}

/// Which seat: a session and a party of it (one stream may play several
/// parties of one session).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatKey {
    pub session_id: String,
    pub party: String,
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
    Finished { seat: SeatKey, result: Option<pb::SessionResult> },
    /// The server refused a seat (unknown session, wrong token, already
    /// joined or over): it will never finish; the seat is forgotten.
    Refused { seat: SeatKey, message: String },
}

/// The agent's side of one stream: the seats it plays, each with its
/// strategy. Feed it every server message; it answers turns. Seats may be
/// added at any time (a cluster node plays other nodes' parties this way).
#[derive(Default)]
pub struct Seats {
    playing: HashMap<SeatKey, Playing>,
}

impl Seats {
    /// Takes a seat; returns the `Join` to send.
    pub fn join(&mut self, seat: Seat) -> pb::AgentMessage {
        let key = seat.key();
        let join = pb::Join { session_id: seat.session_id, party: seat.party, token: seat.token };
        self.playing.insert(key, Playing { strategy: seat.strategy, domain: None, pending: Vec::new() });
        pb::AgentMessage { kind: Some(pb::agent_message::Kind::Join(join)) }
    }

    /// No seat is still playing.
    pub fn is_empty(&self) -> bool {
        self.playing.is_empty()
    }

    /// The seat a server message is for: by session and party, or, from a
    /// server that names no party, the only seat of that session.
    fn key_of(&self, session_id: &str, party: &str) -> Option<SeatKey> {
        let key = SeatKey { session_id: session_id.to_string(), party: party.to_string() };
        if self.playing.contains_key(&key) {
            return Some(key);
        }
        if !party.is_empty() {
            return None;
        }
        let mut of_session = self.playing.keys().filter(|k| k.session_id == session_id);
        match (of_session.next(), of_session.next()) {
            (Some(k), None) => Some(k.clone()),
            _ => None,
        }
    }

    fn seat(&mut self, session_id: &str, party: &str, what: &str) -> Result<(SeatKey, &mut Playing), ClientError> {
        let key = self
            .key_of(session_id, party)
            .ok_or_else(|| bad(format!("{what} for a seat this stream does not play")))?;
        let p = self.playing.get_mut(&key).expect("found above");
        Ok((key, p))
    }

    /// Handles one server message. An error means the server broke the
    /// protocol (the stream is no longer trustworthy).
    pub fn handle(&mut self, msg: pb::ServerMessage) -> Result<SeatEvent, ClientError> {
        let Some(kind) = msg.kind else { return Ok(SeatEvent::Quiet) };
        use pb::server_message::Kind;
        match kind {
            Kind::Settings(s) => {
                let (_, p) = self.seat(&s.session_id, &s.party, "settings")?;
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
                    bids: Default::default(),
                };
                p.strategy.init(&ctx);
                p.domain = Some(domain);
                Ok(SeatEvent::Quiet)
            }
            Kind::ActionDone(a) => {
                let (_, p) = self.seat(&a.session_id, &a.to_party, "an action")?;
                let domain = p.domain.clone().ok_or_else(|| bad("an action before the settings"))?;
                let action = action_from_pb(&domain, a.action.as_ref()).map_err(bad)?;
                p.pending.push(Observation { party: a.party as usize, action, time: a.time });
                Ok(SeatEvent::Quiet)
            }
            Kind::YourTurn(t) => {
                let (key, p) = self.seat(&t.session_id, &t.party, "a turn")?;
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
                let act = pb::Act {
                    session_id: t.session_id,
                    turn: t.turn,
                    action: Some(action_to_pb(&domain, &action)),
                    party: key.party,
                };
                Ok(SeatEvent::Reply(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Act(act)) }))
            }
            Kind::Finished(f) => Ok(match self.key_of(&f.session_id, &f.party) {
                Some(key) => {
                    self.playing.remove(&key);
                    SeatEvent::Finished { seat: key, result: f.result }
                }
                None => SeatEvent::Quiet,
            }),
            Kind::Error(e) => {
                // A refused join means this seat will never finish.
                if matches!(e.code.as_str(), "not-found" | "unauthenticated" | "already-joined" | "finished")
                    && let Some(key) = self.key_of(&e.session_id, &e.party)
                {
                    self.playing.remove(&key);
                    return Ok(SeatEvent::Refused { seat: key, message: e.message });
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
    // Joins and one answer per turn of a seat: bounded by the seats.
    let (tx, rx) = mpsc::unbounded_channel::<pb::AgentMessage>();
    let order: Vec<SeatKey> = seats.iter().map(Seat::key).collect();
    let mut table = Seats::default();
    for seat in seats {
        tx.send(table.join(seat)).expect("receiver alive");
    }
    let mut results: HashMap<SeatKey, pb::SessionResult> = HashMap::new();
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
            SeatEvent::Finished { seat, result } => {
                results.insert(seat, result.unwrap_or_default());
            }
            SeatEvent::Refused { seat, message } => {
                return Err(ClientError::Refused { session: seat.session_id, message });
            }
        }
    }
    Ok(order.into_iter().map(|k| results.remove(&k).unwrap_or_default()).collect())
}

fn bad(message: impl ToString) -> ClientError {
    ClientError::Protocol(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::endpoint_url;

    #[test]
    fn one_rule_for_every_address_a_person_types() {
        for (given, tls, want) in [
            ("127.0.0.1:7000", false, "http://127.0.0.1:7000"),
            ("127.0.0.1:7000", true, "https://127.0.0.1:7000"),
            (" node-0.nodes.svc:7001 ", false, "http://node-0.nodes.svc:7001"),
            ("[::1]:7000", false, "http://[::1]:7000"),
            ("http://localhost:7000", false, "http://localhost:7000"),
            ("http://localhost:7000/", false, "http://localhost:7000"),
            ("HTTPS://localhost:7000", true, "https://localhost:7000"),
        ] {
            assert_eq!(endpoint_url(given, tls).as_deref(), Ok(want), "{given} (tls {tls})");
        }
        for (given, tls, says) in [
            ("http://localhost:7000", true, "TLS options"),
            ("https://localhost:7000", false, "--ca"),
            ("grpc://localhost:7000", false, "unknown scheme"),
            ("localhost", false, "HOST:PORT"),
            ("localhost:http", false, "HOST:PORT"),
            (":7000", false, "HOST:PORT"),
            ("http://a:1/path", false, "HOST:PORT"),
            ("", false, "HOST:PORT"),
        ] {
            let e = endpoint_url(given, tls).unwrap_err();
            assert!(e.contains(says), "{given}: {e}");
        }
    }
}
