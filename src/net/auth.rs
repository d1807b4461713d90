//! The one authentication layer in front of every gRPC service negotium
//! serves (the agent API, the cluster service, the parameter server).
//!
//! Who may call what:
//!
//! | call | credential |
//! |---|---|
//! | `Negotiation.Negotiate` (the agent stream) | none to open it; each `Join` proves its party with the token `CreateSession` issued for it |
//! | every other `Negotiation` call (create, list, watch, result) | the admin token |
//! | `Negotiation.CancelSession` | the admin token, or the session's owner token |
//! | `Cluster.*` (launchers) | the cluster token (the admin token where no cluster token is set) |
//! | `Training.*` (workers) | the training token |
//! | anything else | refused |
//!
//! A credential travels as `authorization: Bearer <token>` and is compared in
//! constant time. A role whose token is not configured is open: a server
//! refuses to start that way on an address other than loopback unless told
//! `--insecure` ([`Credentials::check_exposure`]).
//!
//! The layer also counts each connection's open calls for the gate's idle
//! timeout ([`super::gate`]); refused calls do not count, so a client
//! without credentials keeps a connection no longer than the gate's
//! first-call timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, http};
use tonic::transport::server::TlsConnectInfo;

use super::gate::{CallGuard, Peer};
use super::untrusted::LogBudget;

/// A token, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `None` for an empty token (an unset environment variable often
    /// arrives as "").
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let t = token.into();
        (!t.is_empty()).then_some(Self(t))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, given: &str) -> bool {
        same_secret(&self.0, given)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Equal-time comparison, so that a token cannot be guessed byte by byte.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub admin: Option<Secret>,
    /// Launchers and other nodes; the admin token stands in when unset.
    pub cluster: Option<Secret>,
    pub training: Option<Secret>,
}

/// A credential's role, for what a server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Cluster,
    Training,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open; the stream's messages carry their own proofs (party tokens).
    Agent,
    Admin,
    /// The admin token, or a proof the handler checks (an owner token).
    AdminOrOwner,
    Cluster,
    Training,
    /// Not a call negotium serves.
    Refused,
}

impl Access {
    pub fn of(path: &str) -> Self {
        match path {
            "/negotium.v1.Negotiation/Negotiate" => Access::Agent,
            "/negotium.v1.Negotiation/CancelSession" => Access::AdminOrOwner,
            // Management calls added later are admin calls until listed.
            p if p.starts_with("/negotium.v1.Negotiation/") => Access::Admin,
            p if p.starts_with("/negotium.v1.Cluster/") => Access::Cluster,
            p if p.starts_with("/negotium.v1.Training/") => Access::Training,
            _ => Access::Refused,
        }
    }
}

/// Who made a call, as the handlers see it (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub client: IpAddr,
    /// May do what the admin token allows.
    pub admin: bool,
    /// Proved it is a cluster member (a launcher or another node): exempt
    /// from the per-client limits meant for anonymous agents.
    pub cluster_member: bool,
}

impl Caller {
    /// Who made `req` (a caller with no rights where the guard did not run,
    /// as in unit tests that call handlers directly).
    pub fn of<T>(req: &tonic::Request<T>) -> Caller {
        req.extensions().get::<Caller>().copied().unwrap_or(Caller {
            client: req.remote_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip()),
            admin: false,
            cluster_member: false,
        })
    }
}

impl Credentials {
    fn cluster_secret(&self) -> Option<&Secret> {
        self.cluster.as_ref().or(self.admin.as_ref())
    }

    /// Refuses to serve `addr` beyond loopback with a role of `serves`
    /// open to anyone (no token for it), unless `insecure`.
    pub fn check_exposure(&self, addr: SocketAddr, insecure: bool, serves: &[Role]) -> Result<(), String> {
        if addr.ip().is_loopback() || insecure {
            return Ok(());
        }
        let open: Vec<&str> = serves
            .iter()
            .filter(|r| match r {
                Role::Admin => self.admin.is_none(),
                Role::Cluster => self.cluster_secret().is_none(),
                Role::Training => self.training.is_none(),
            })
            .map(|r| match r {
                Role::Admin => "management (--admin-token)",
                Role::Cluster => "cluster (--cluster-token, or --admin-token for both)",
                Role::Training => "training (--token)",
            })
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing to serve {addr} with calls open to anyone who can reach it: {}. Set the tokens (or their \
             NEGOTIUM_* environment variables), listen on 127.0.0.1, or pass --insecure if something else \
             (a mesh, a firewall) authenticates callers",
            open.join(", ")
        ))
    }

    /// Decides one call: the caller it is, or the status refusing it.
    fn decide(&self, path: &str, authorization: Option<&str>, client: IpAddr) -> Result<Caller, Status> {
        let bearer = authorization.and_then(|v| v.strip_prefix("Bearer "));
        let proves = |s: Option<&Secret>| match s {
            None => true,
            Some(s) => bearer.is_some_and(|b| s.matches(b)),
        };
        let presented = |s: Option<&Secret>| s.is_some_and(|s| bearer.is_some_and(|b| s.matches(b)));
        let caller =
            Caller { client, admin: proves(self.admin.as_ref()), cluster_member: presented(self.cluster_secret()) };
        let need = |ok: bool, which: &str| {
            if ok {
                Ok(caller)
            } else {
                Err(Status::unauthenticated(format!("this call needs `authorization: Bearer <{which}>`")))
            }
        };
        match Access::of(path) {
            Access::Agent | Access::AdminOrOwner => Ok(caller),
            Access::Admin => need(caller.admin, "admin token"),
            Access::Cluster => need(proves(self.cluster_secret()), "cluster token"),
            Access::Training => need(proves(self.training.as_ref()), "training token"),
            Access::Refused => Err(Status::unimplemented("no such call")),
        }
    }
}

/// The tower layer that puts [`Guard`] in front of a server's services.
#[derive(Clone)]
pub struct GuardLayer {
    credentials: Arc<Credentials>,
}

impl GuardLayer {
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials: Arc::new(credentials) }
    }
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, credentials: self.credentials.clone() }
    }
}

/// Checks every call's credential before any handler runs, and counts the
/// connection's open calls.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    credentials: Arc<Credentials>,
}

static REFUSED_LOG: LogBudget = LogBudget::new(5);

/// The gate's view of the connection a request came on.
fn peer_of<B>(req: &http::Request<B>) -> Option<Peer> {
    let ext = req.extensions();
    ext.get::<Peer>().cloned().or_else(|| ext.get::<TlsConnectInfo<Peer>>().map(|t| t.get_ref().clone()))
}

impl<S, B> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let peer = peer_of(&req);
        let client = peer.as_ref().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.addr.ip());
        let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
        match self.credentials.decide(req.uri().path(), authorization, client) {
            Err(status) => {
                if let Some(suppressed) = REFUSED_LOG.allow() {
                    tracing::warn!(%client, path = %super::untrusted::shown(req.uri().path()), suppressed, "call refused: {}", status.message());
                }
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                let call = peer.map(|p| p.activity.begin());
                let response = self.inner.call(req);
                Box::pin(async move {
                    let response = response.await?;
                    Ok(response.map(|body| Body::new(Tracked { body, _call: call })))
                })
            }
        }
    }
}

/// A response body that keeps its call counted as open until it is done.
struct Tracked {
    body: Body,
    _call: Option<CallGuard>,
}

impl tonic::codegen::Body for Tracked {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        // Said as the inner body says it. An error is a gRPC "trailers-only"
        // response: its status travels in the headers, which must end the
        // stream. A body that claimed not to be over would add an empty
        // DATA frame after them, and strict clients (grpc-python) then see
        // `UNKNOWN: Stream removed` instead of the status. An empty body is
        // a call that is over, so the guard may go with it.
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error response (empty body, status in the headers) must say it is
    /// over, so that it goes out as one HEADERS frame that ends the stream.
    #[test]
    fn an_empty_response_body_ends_the_stream() {
        use tonic::codegen::Body as _;
        let error = Status::not_found("no session").into_http::<Body>();
        let tracked = Tracked { body: error.into_body(), _call: None };
        assert!(tracked.is_end_stream());
    }

    fn creds() -> Credentials {
        Credentials { admin: Secret::new("adm"), cluster: Secret::new("clu"), training: None }
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn every_call_needs_its_credential() {
        let c = creds();
        let create = "/negotium.v1.Negotiation/CreateSession";
        assert!(c.decide(create, None, LOCAL).is_err());
        assert!(c.decide(create, Some("Bearer clu"), LOCAL).is_err());
        assert!(c.decide(create, Some("Bearer adm"), LOCAL).unwrap().admin);
        let work = "/negotium.v1.Cluster/Work";
        assert!(c.decide(work, None, LOCAL).is_err());
        assert!(c.decide(work, Some("Bearer adm"), LOCAL).is_err(), "the cluster token is its own");
        assert!(c.decide(work, Some("Bearer clu"), LOCAL).unwrap().cluster_member);
        let agent = c.decide("/negotium.v1.Negotiation/Negotiate", None, LOCAL).unwrap();
        assert!(!agent.admin && !agent.cluster_member);
        assert!(c.decide("/grpc.reflection.v1.ServerReflection/Info", Some("Bearer adm"), LOCAL).is_err());
        // Training is open here (no token): fine on loopback only.
        assert!(c.decide("/negotium.v1.Training/TrainingJoin", None, LOCAL).is_ok());
        assert!(c.check_exposure("0.0.0.0:7100".parse().unwrap(), false, &[Role::Training]).is_err());
        assert!(c.check_exposure("0.0.0.0:7000".parse().unwrap(), false, &[Role::Admin, Role::Cluster]).is_ok());
    }

    #[test]
    fn without_a_cluster_token_the_admin_token_guards_the_cluster() {
        let c = Credentials { admin: Secret::new("adm"), ..Credentials::default() };
        assert!(c.decide("/negotium.v1.Cluster/Work", None, LOCAL).is_err());
        assert!(c.decide("/negotium.v1.Cluster/Work", Some("Bearer adm"), LOCAL).is_ok());
        let open = Credentials::default();
        let e = open.check_exposure("0.0.0.0:7000".parse().unwrap(), false, &[Role::Admin]).unwrap_err();
        assert!(!e.contains("cluster"), "serve has no cluster service: {e}");
        assert!(e.contains("--admin-token") && e.contains("--insecure"), "{e}");
        assert!(open.check_exposure("127.0.0.1:7000".parse().unwrap(), false, &[Role::Admin]).is_ok());
        assert!(open.check_exposure("0.0.0.0:7000".parse().unwrap(), true, &[Role::Admin]).is_ok());
        assert!(Secret::new("").is_none());
        assert_eq!(format!("{:?}", Secret::new("hunter2").unwrap()), "Secret(…)");
    }
}
