//! The management calls of the public API: create, list, watch, fetch
//! and cancel sessions. `Negotiate` is answered here too (one trait), and
//! handed to the agent stream at once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status, Streaming};

use super::{NegotiationService, ServerConfig, lock};
use crate::core::scenario::{ModelSource, Scenario};
use crate::core::strategy::StrategySpec;
use crate::engine::actors::Abort;
use crate::net::auth::{Caller, same_secret};
use crate::net::pb;
use crate::net::pb::negotiation_server::Negotiation;
use crate::net::registry::{Entry, WATCH_BUFFER};
use crate::net::untrusted::shown;

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A session's events for one watcher, ending with its result. A watcher
/// that falls [`WATCH_BUFFER`] events behind is cut off with a status
/// rather than buffered.
struct WatchStream {
    /// This watcher's receiver of the session's broadcast; it lags on its
    /// own, without slowing the session or the other watchers.
    inner: BroadcastStream<pb::SessionEvent>,
    /// The result (or the cut-off status) went out: nothing follows.
    done: bool,
}

impl Stream for WatchStream {
    type Item = Result<pb::SessionEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Ok(e))) => {
                self.done = matches!(e.kind, Some(pb::session_event::Kind::Finished(_)));
                Poll::Ready(Some(Ok(e)))
            }
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                self.done = true;
                Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "the watcher fell {n} events behind and was cut off (it must read as fast as the session acts)"
                )))))
            }
        }
    }
}

/// The most sessions one `ListSessions` page holds.
const MAX_PAGE: usize = 1_000;

impl NegotiationService {
    /// Parses and admits a scenario a remote caller sent: the file checks,
    /// the server's limits, and models only from `--models`.
    /// A CreateSession's scenario with its options applied: strategies
    /// replaced (of local parties only, learned models as published) and
    /// the opening party moved first. The limits are checked after, on
    /// what will run.
    fn admit_request(config: &ServerConfig, r: &pb::CreateSessionRequest) -> Result<Scenario, Status> {
        let mut scenario =
            Scenario::parse_from(&r.scenario_toml, "scenario", ModelSource::Published(config.models.as_deref()))
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        for o in &r.strategies {
            let bad = |why: String| Status::invalid_argument(format!("strategies: party `{}`: {why}", shown(&o.party)));
            if scenario.parties.iter().any(|p| p.name == o.party && p.external) {
                return Err(bad("is external: its agent chooses how it plays".into()));
            }
            let mut spec = StrategySpec::parse_cli(&o.strategy).map_err(|e| bad(e.to_string()))?;
            spec.publish_in(config.models.as_deref()).map_err(|e| bad(e.to_string()))?;
            spec.build().map_err(|e| bad(e.to_string()))?;
            scenario.set_strategy(&o.party, spec).map_err(bad)?;
        }
        if !r.first_party.is_empty() {
            scenario
                .open_with(&r.first_party)
                .map_err(|e| Status::invalid_argument(format!("first_party: {}", shown(&e))))?;
        }
        config.limits.admit(&scenario).map_err(Status::invalid_argument)?;
        Ok(scenario)
    }
}

#[tonic::async_trait]
impl Negotiation for NegotiationService {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::CreateSessionResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let config = self.config.clone();
        // Parsing a large scenario and building its strategies (a learned
        // model is read from disk) is heavy: off the async threads.
        let scenario = self.heavy(move || Self::admit_request(&config, &r).map(|s| (s, r))).await??;
        let (scenario, r) = scenario;
        let seed = if r.has_seed { r.seed } else { scenario.seed };
        let join_timeout = if r.join_timeout_seconds > 0.0 && r.join_timeout_seconds.is_finite() {
            Duration::from_secs_f64(r.join_timeout_seconds.min(3600.0))
        } else {
            self.config.join_timeout
        };
        let created = self.create(scenario, seed, caller.client, join_timeout)?;
        Ok(Response::new(pb::CreateSessionResponse {
            session_id: created.session_id,
            tokens: created.tokens.into_iter().map(|(party, token)| pb::PartyToken { party, token }).collect(),
            owner_token: created.owner_token,
        }))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let r = req.into_inner();
        let size = if r.page_size == 0 { 100 } else { (r.page_size as usize).min(MAX_PAGE) };
        // Half the message budget: names are capped, but a page of many
        // many-party sessions must still fit in one message.
        let budget = self.config.max_message_bytes / 2;
        let reg = lock(&self.registry);
        let mut sessions = Vec::new();
        let mut bytes = 0;
        let mut next_page_token = String::new();
        let from = (std::ops::Bound::Excluded(r.page_token.clone()), std::ops::Bound::Unbounded);
        let range =
            if r.page_token.is_empty() { reg.sessions.range::<String, _>(..) } else { reg.sessions.range(from) };
        for (id, entry) in range {
            let info = match entry {
                // Over, its result being analysed: nobody is waited for.
                Entry::Live(l) if l.ended.is_some() => pb::SessionInfo {
                    session_id: id.clone(),
                    scenario: l.scenario.clone(),
                    state: "finishing".into(),
                    parties: l.parties.clone(),
                    waiting_for: Vec::new(),
                    ended_by: String::new(),
                    ending: l.ended.clone().unwrap_or_default(),
                },
                Entry::Live(l) => {
                    let waiting_for: Vec<String> =
                        l.seats.iter().filter(|s| s.bound.is_none()).map(|s| s.name.clone()).collect();
                    pb::SessionInfo {
                        session_id: id.clone(),
                        scenario: l.scenario.clone(),
                        state: if waiting_for.is_empty() { "running" } else { "waiting" }.into(),
                        parties: l.parties.clone(),
                        waiting_for,
                        ended_by: String::new(),
                        ending: String::new(),
                    }
                }
                Entry::Done(d) => pb::SessionInfo {
                    session_id: id.clone(),
                    scenario: d.scenario.clone(),
                    state: "finished".into(),
                    parties: d.parties.clone(),
                    waiting_for: Vec::new(),
                    ended_by: d.result.ended_by.clone(),
                    ending: d.ending.clone(),
                },
            };
            let b = info.encoded_len() + 8;
            if sessions.len() == size || (bytes + b > budget && !sessions.is_empty()) {
                next_page_token = sessions.last().map(|s: &pb::SessionInfo| s.session_id.clone()).unwrap_or_default();
                break;
            }
            bytes += b;
            sessions.push(info);
        }
        Ok(Response::new(pb::ListSessionsResponse { sessions, next_page_token }))
    }

    type WatchSessionStream = EventStream<pb::SessionEvent>;

    async fn watch_session(
        &self,
        req: Request<pb::WatchSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        let id = req.into_inner().session_id;
        let result = {
            let reg = lock(&self.registry);
            match reg.sessions.get(&id) {
                None => return Err(Status::not_found(format!("no session `{}`", shown(&id)))),
                Some(Entry::Done(d)) => d.result.clone(),
                Some(Entry::Live(l)) => {
                    let rx = l.watchers.get_or_init(|| broadcast::channel(WATCH_BUFFER).0).subscribe();
                    return Ok(Response::new(Box::pin(WatchStream { inner: BroadcastStream::new(rx), done: false })));
                }
            }
        };
        let event = pb::SessionEvent { kind: Some(pb::session_event::Kind::Finished((*result).clone())) };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(event)))))
    }

    async fn get_result(&self, req: Request<pb::GetResultRequest>) -> Result<Response<pb::SessionResult>, Status> {
        let id = req.into_inner().session_id;
        let result = match lock(&self.registry).sessions.get(&id) {
            None => return Err(Status::not_found(format!("no session `{}`", shown(&id)))),
            Some(Entry::Live(_)) => return Err(Status::failed_precondition("the session has not finished")),
            Some(Entry::Done(d)) => d.result.clone(),
        };
        // The copy (a trace may be megabytes) is made outside the lock.
        Ok(Response::new((*result).clone()))
    }

    async fn cancel_session(
        &self,
        req: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let mut reg = lock(&self.registry);
        let live = match reg.sessions.get_mut(&r.session_id) {
            None => return Err(Status::not_found(format!("no session `{}`", shown(&r.session_id)))),
            Some(Entry::Done(_)) => return Err(Status::failed_precondition("the session has already finished")),
            Some(Entry::Live(l)) => l,
        };
        let owner = !r.owner_token.is_empty() && same_secret(&live.owner, &r.owner_token);
        if !(caller.admin || owner) {
            return Err(Status::permission_denied("cancelling a session needs its owner token or the admin token"));
        }
        let by = if owner { "its owner" } else { "an admin" };
        if let Some(session) = &live.session {
            session.do_send(Abort(format!("cancelled by {by}")));
        }
        tracing::info!(session = %shown(&r.session_id), by, "session cancelled");
        Ok(Response::new(pb::CancelSessionResponse {}))
    }

    type NegotiateStream = EventStream<pb::ServerMessage>;

    async fn negotiate(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::NegotiateStream>, Status> {
        Ok(Response::new(Box::pin(self.open_agent_stream(req))))
    }
}
