//! A node's links to the nodes that host sessions it plays parties of.
//!
//! One agent stream per host node, opened on first use and shared by every
//! party played there (the public `Negotiate` stream: a remote party is, to
//! its host, an external agent with a token). A broken link fails the
//! parties on it; the next seat opens a fresh one. Seats are keyed by
//! (session, party): a link may play several parties of one session.
//!
//! The link shows the host this node's cluster token, so that the host
//! treats it as a cluster member (its stream may idle between sessions).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::metrics::Metrics;
use crate::net::auth::Secret;
use crate::net::client::{AdminToken, ClientTls, Seat, SeatEvent, SeatKey, Seats, connect};
use crate::net::pb::negotiation_client::NegotiationClient;

/// The end of one seat: `Ok` once its session finished, or why it could not
/// be played to the end.
pub type SeatOutcome = Result<(), String>;

struct SeatRequest {
    seat: Seat,
    done: oneshot::Sender<SeatOutcome>,
}

/// The links of one node, by host address. Seat requests wait in an
/// unbounded channel: they come from launchers' `PlaySeat`s, which a
/// launcher's window bounds.
pub struct PeerLinks {
    links: Mutex<HashMap<String, mpsc::UnboundedSender<SeatRequest>>>,
    metrics: Arc<Metrics>,
    /// Dial other nodes over TLS.
    tls: Option<Arc<ClientTls>>,
    /// This node's cluster token, shown to the hosts it dials.
    token: Option<Secret>,
}

impl PeerLinks {
    pub fn new(metrics: Arc<Metrics>, tls: Option<ClientTls>, token: Option<Secret>) -> Self {
        Self { links: Mutex::new(HashMap::new()), metrics, tls: tls.map(Arc::new), token }
    }

    /// Plays `seat` of a session hosted at `host` (`host:port`).
    pub fn play(&self, host: &str, seat: Seat) -> oneshot::Receiver<SeatOutcome> {
        let (done, outcome) = oneshot::channel();
        let mut request = SeatRequest { seat, done };
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let link = links.entry(host.to_string()).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let (metrics, tls, token) = (self.metrics.clone(), self.tls.clone(), self.token.clone());
                tokio::spawn(run_link(host.to_string(), rx, metrics, tls, token));
                tx
            });
            match link.send(request) {
                Ok(()) => return outcome,
                // The link broke since: drop it and open a fresh one.
                Err(mpsc::error::SendError(r)) => {
                    request = r;
                    links.remove(host);
                }
            }
        }
    }
}

async fn run_link(
    host: String,
    mut requests: mpsc::UnboundedReceiver<SeatRequest>,
    metrics: Arc<Metrics>,
    tls: Option<Arc<ClientTls>>,
    token: Option<Secret>,
) {
    let mut waiting: HashMap<SeatKey, oneshot::Sender<SeatOutcome>> = HashMap::new();
    let reason = match play_link(&host, tls.as_deref(), token, &mut requests, &mut waiting).await {
        Ok(()) => return,
        Err(reason) => reason,
    };
    metrics.stream_errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(host = %host, seats = waiting.len(), "link to host node broke: {reason}");
    // No request may be lost between the failure and the link's removal:
    // close, then fail whatever is still queued.
    requests.close();
    while let Ok(r) = requests.try_recv() {
        waiting.insert(r.seat.key(), r.done);
    }
    for (_, done) in waiting {
        let _ = done.send(Err(format!("link to {host} broke: {reason}")));
    }
}

async fn play_link(
    host: &str,
    tls: Option<&ClientTls>,
    token: Option<Secret>,
    requests: &mut mpsc::UnboundedReceiver<SeatRequest>,
    waiting: &mut HashMap<SeatKey, oneshot::Sender<SeatOutcome>>,
) -> Result<(), String> {
    // Requests that arrive while connecting wait in the channel.
    let channel = connect(host, tls.map(ClientTls::config)).await.map_err(|e| e.to_string())?;
    let mut client =
        NegotiationClient::with_interceptor(channel, AdminToken::new(token.map(|t| t.expose().to_string())))
            .max_decoding_message_size(64 << 20);
    // Joins and one answer per turn of a seat: bounded by the seats played.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut inbound =
        client.negotiate(UnboundedReceiverStream::new(rx)).await.map_err(|s| s.message().to_string())?.into_inner();
    let mut seats = Seats::default();
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(r) = request else { return Ok(()) };
                waiting.insert(r.seat.key(), r.done);
                let _ = tx.send(seats.join(r.seat));
            }
            message = inbound.next() => {
                let message = match message {
                    None => return Err("the host closed the stream".into()),
                    Some(Err(status)) => return Err(status.message().to_string()),
                    Some(Ok(m)) => m,
                };
                match seats.handle(message).map_err(|e| e.to_string())? {
                    SeatEvent::Quiet => {}
                    SeatEvent::Reply(m) => {
                        let _ = tx.send(m);
                    }
                    SeatEvent::Finished { seat, .. } => {
                        if let Some(done) = waiting.remove(&seat) {
                            let _ = done.send(Ok(()));
                        }
                    }
                    SeatEvent::Refused { seat, message } => {
                        if let Some(done) = waiting.remove(&seat) {
                            let _ = done.send(Err(format!("the host refused the seat: {message}")));
                        }
                    }
                }
            }
        }
    }
}
