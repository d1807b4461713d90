//! The parameter server over gRPC (`proto/negotium/v1/training.proto`):
//! the tonic service forwards to the [`ParameterServer`] actor, and
//! [`RemoteLink`] is a worker's blocking client. A fetch is a long poll: it
//! returns when the worker has work (or training is over).

use std::net::SocketAddr;

use actix::Addr;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::config::TrainConfig;
use super::ps::{self, Assignment, FetchReply, GradientMsg, ParameterServer, PsError, PushAck};
use super::worker::PsLink;
use crate::net::auth::{Credentials, Secret};
use crate::net::client::{AdminToken, ClientTls, connect};
use crate::net::gate::{Gate, GateConfig};
use crate::net::pb::training_client::TrainingClient;
use crate::net::pb::training_server::{Training, TrainingServer};
use crate::net::pb::{
    TrainingAssignment, TrainingFetchReply, TrainingFetchRequest, TrainingJoinReply, TrainingJoinRequest,
    TrainingPushReply, TrainingPushRequest, training_fetch_reply,
};
use crate::net::transport::{self, Exposure, TlsFiles};

/// Parameters and gradients of big models exceed tonic's 4 MiB default.
const MAX_MESSAGE: usize = 256 << 20;

struct Service {
    ps: Addr<ParameterServer>,
}

fn status(e: PsError) -> Status {
    match e {
        PsError::UnknownWorker(_) => Status::not_found(e.to_string()),
        PsError::FutureVersion { .. } | PsError::BadGradient(_) => Status::invalid_argument(e.to_string()),
        PsError::Full(_) => Status::resource_exhausted(e.to_string()),
        PsError::Other(m) => Status::internal(m),
    }
}

fn mailbox(e: actix::MailboxError) -> Status {
    Status::unavailable(format!("parameter server: {e}"))
}

#[tonic::async_trait]
impl Training for Service {
    async fn training_join(&self, _: Request<TrainingJoinRequest>) -> Result<Response<TrainingJoinReply>, Status> {
        let (worker, cfg) = self.ps.send(ps::Join).await.map_err(mailbox)?.map_err(status)?;
        let config_toml = toml::to_string(&cfg).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(TrainingJoinReply { worker, config_toml }))
    }

    async fn training_fetch(&self, req: Request<TrainingFetchRequest>) -> Result<Response<TrainingFetchReply>, Status> {
        let r = req.into_inner();
        let reply =
            self.ps.send(ps::Fetch { worker: r.worker, after: r.after }).await.map_err(mailbox)?.map_err(status)?;
        let reply = match reply {
            FetchReply::Work(a) => training_fetch_reply::Reply::Work(TrainingAssignment {
                version: a.version,
                iteration: a.iteration,
                params: a.params.to_vec(),
                shard: a.shard as u32,
                shards: a.shards as u32,
            }),
            FetchReply::Done | FetchReply::Wait => training_fetch_reply::Reply::Done(true),
        };
        Ok(Response::new(TrainingFetchReply { reply: Some(reply) }))
    }

    async fn training_push(&self, req: Request<TrainingPushRequest>) -> Result<Response<TrainingPushReply>, Status> {
        let r = req.into_inner();
        let stats = serde_json::from_str(&r.stats_json).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let msg = GradientMsg { worker: r.worker, version: r.version, grad: r.grad, samples: r.samples, stats };
        let ack = self.ps.send(ps::Push(msg)).await.map_err(mailbox)?.map_err(status)?;
        Ok(Response::new(TrainingPushReply { accepted: ack == PushAck::Accepted }))
    }
}

/// How a parameter server is exposed: where, TLS, and the token workers
/// must show (see [`crate::net::auth`]).
#[derive(Debug, Clone)]
pub struct PsServe {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub token: Option<Secret>,
    /// Serve beyond loopback without a token (something else authenticates).
    pub insecure: bool,
}

impl PsServe {
    /// Loopback, no TLS, no token (tests and one-machine runs).
    pub fn local(listen: SocketAddr) -> Self {
        Self { listen, tls: None, token: None, insecure: false }
    }
}

/// Serves the parameter server on `listener` until `shutdown` completes,
/// behind the same gate and guard as every negotium server.
pub async fn serve(
    ps: Addr<ParameterServer>,
    listener: TcpListener,
    how: &PsServe,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let svc = TrainingServer::new(Service { ps })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let exposure = Exposure {
        tls: how.tls.clone(),
        credentials: Credentials { training: how.token.clone(), ..Credentials::default() },
        gate: Gate::new(GateConfig::default()),
    };
    transport::serve(Routes::new(svc), listener, exposure, shutdown).await.map_err(|e| e.to_string())
}

/// How a worker reaches its parameter server.
#[derive(Debug, Clone, Default)]
pub struct PsDial {
    pub tls: Option<ClientTls>,
    pub token: Option<Secret>,
}

/// A worker's connection to a remote parameter server: blocking calls (the
/// worker thread does CPU work in between) on its caller's runtime.
pub struct RemoteLink {
    /// Drives the calls; a multi-threaded runtime's, whose own threads run
    /// the connection while a worker thread blocks on a call.
    rt: tokio::runtime::Handle,
    client: TrainingClient<InterceptedService<Channel, AdminToken>>,
    device: String,
}

impl RemoteLink {
    /// Call from a thread outside `rt` (blocking inside it would stall it).
    pub fn connect(addr: &str, device: &str, dial: &PsDial, rt: tokio::runtime::Handle) -> Result<Self, String> {
        let channel = rt
            .block_on(connect(addr, dial.tls.as_ref().map(ClientTls::config)))
            .map_err(|e| format!("the parameter server: {e}"))?;
        let token = AdminToken::new(dial.token.as_ref().map(|t| t.expose().to_string()));
        let client = TrainingClient::with_interceptor(channel, token)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Self { rt, client, device: device.into() })
    }
}

fn from_status(s: Status) -> PsError {
    if s.code() == tonic::Code::NotFound {
        // The server's message names the id; the worker only needs the kind.
        PsError::UnknownWorker(0)
    } else {
        PsError::Other(format!("parameter server: {}", s.message()))
    }
}

impl PsLink for RemoteLink {
    fn join(&mut self) -> Result<(u64, TrainConfig), PsError> {
        let req = TrainingJoinRequest { device: self.device.clone() };
        let r = self.rt.block_on(self.client.training_join(req)).map_err(from_status)?.into_inner();
        let cfg = toml::from_str(&r.config_toml).map_err(|e| PsError::Other(format!("config from server: {e}")))?;
        Ok((r.worker, cfg))
    }

    fn fetch(&mut self, worker: u64, after: Option<u64>) -> Result<FetchReply, PsError> {
        let r = self.rt.block_on(self.client.training_fetch(TrainingFetchRequest { worker, after }));
        match r.map_err(from_status)?.into_inner().reply {
            Some(training_fetch_reply::Reply::Work(a)) => Ok(FetchReply::Work(Assignment {
                version: a.version,
                iteration: a.iteration,
                params: std::sync::Arc::new(a.params),
                shard: a.shard as usize,
                shards: a.shards as usize,
            })),
            _ => Ok(FetchReply::Done),
        }
    }

    fn push(&mut self, msg: GradientMsg) -> Result<PushAck, PsError> {
        let stats_json = serde_json::to_string(&msg.stats).map_err(|e| PsError::Other(e.to_string()))?;
        let req = TrainingPushRequest {
            worker: msg.worker,
            version: msg.version,
            grad: msg.grad,
            samples: msg.samples,
            stats_json,
        };
        let r = self.rt.block_on(self.client.training_push(req)).map_err(from_status)?.into_inner();
        Ok(if r.accepted { PushAck::Accepted } else { PushAck::Ignored })
    }
}

/// Binds `how.listen` (port 0 picks one) and returns the listener and its
/// address; refuses an address beyond loopback without a token unless
/// `insecure`.
pub async fn bind(how: &PsServe) -> Result<(TcpListener, SocketAddr), String> {
    let l = transport::listen(how.listen, "--listen").await.map_err(|e| e.to_string())?;
    let a = l.local_addr().map_err(|e| e.to_string())?;
    let credentials = Credentials { training: how.token.clone(), ..Credentials::default() };
    credentials.check_exposure(a, how.insecure, &[crate::net::auth::Role::Training])?;
    Ok((l, a))
}
