//! The go-plugin transport, as HashiCorp go-plugin's server side does it for
//! Steampipe: the magic cookie check, a unix socket, the one handshake line on
//! stdout, gRPC with the health, controller, stdio and broker services next
//! to the plugin's own, and a clean exit on `Shutdown`.
//!
//! gRPC is plaintext (h2c), as Steampipe needs: its reattaching clients never
//! use TLS. Only when a host asks for go-plugin's AutoMTLS (by setting
//! `PLUGIN_CLIENT_CERT`, which Steampipe never does) is it served over mutual
//! TLS instead; see [`mtls`].
//!
//! It must not know what the plugin serves: it takes any tonic service.

pub mod mtls;

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

use crate::pb::goplugin as gp;

/// The environment variable the host sets to prove it is a go-plugin host.
pub const MAGIC_COOKIE_KEY: &str = "MANTIX_PLUGIN_MAGIC_COOKIE";
/// Its value (from the Steampipe SDK's handshake config).
pub const MAGIC_COOKIE_VALUE: &str = "really-complex-permanent-string-value";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The app protocol version: the Steampipe SDK leaves it unset, so hosts expect 0.
pub const APP_PROTOCOL_VERSION: u32 = 0;

/// What go-plugin servers print when started by hand.
pub const NOT_A_PROGRAM: &str =
    "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically";

/// True if the host's magic cookie is present and right.
pub fn cookie_present() -> bool {
    std::env::var(MAGIC_COOKIE_KEY)
        .map(|v| v == MAGIC_COOKIE_VALUE)
        .unwrap_or(false)
}

/// The handshake line for a unix socket at `path`. `server_cert` is field 6:
/// empty without TLS, else the base64 (no padding) DER of the AutoMTLS
/// server certificate.
pub fn handshake_line(path: &Path, server_cert: &str) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{server_cert}",
        path.display()
    )
}

/// The plugin could not start; the host has been told (see [`startup_failed`]).
/// The process should exit with status 1.
#[derive(Debug, thiserror::Error)]
#[error("plugin startup failed: {0}")]
pub struct StartupFailed(pub String);

/// Tells the host that the plugin could not start, the way the Steampipe SDK
/// does: the message in place of the handshake line. The caller exits 1.
pub fn startup_failed(message: &str) -> StartupFailed {
    let line = format!(
        "Plugin startup failed: {}\n",
        crate::logging::escape_line(message)
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    tracing::error!("plugin startup failed: {message}");
    StartupFailed(message.to_string())
}

/// Reserves `<dir>/plugin<digits>` as os.CreateTemp does, then frees the name for the socket.
fn socket_path() -> std::io::Result<PathBuf> {
    let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut last = None;
    for _ in 0..100 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let n = h.finish() % 10_000_000_000;
        let path = dir.join(format!("plugin{n}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {
                std::fs::remove_file(&path)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot create a socket in {}: {e}", dir.display()),
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free socket name")))
}

/// After the handshake, stdout must never carry anything else: point fd 1 at /dev/null.
fn silence_stdout() {
    if let Ok(devnull) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 on two valid descriptors; fd 1 stays open (now /dev/null).
        unsafe {
            libc::dup2(devnull.as_raw_fd(), 1);
        }
    }
}

/// The process ignores SIGINT, as go-plugin servers do: a Ctrl-C in the user's
/// terminal reaches the whole process group, and the host decides when to stop.
fn ignore_sigint() {
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

struct Controller {
    stop: Arc<Notify>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _req: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        self.stop.notify_one();
        Ok(Response::new(gp::Empty {}))
    }
}

type Pending<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

struct Stdio;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Pending<gp::StdioData>;
    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        // Logs go to stderr, which the host reads directly; this stream stays
        // open, silent, until the client goes away. Every go-plugin client
        // (>= 1.5) opens it when it connects.
        tracing::debug!("stdio stream opened by a client");
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

struct Broker;

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = Pending<gp::ConnInfo>;
    async fn start_stream(
        &self,
        req: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        // Steampipe brokers no connections; accept the stream and drain it.
        let mut inbound = req.into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

/// Serves `service` (the plugin's gRPC service) as a go-plugin plugin until the
/// host calls `Shutdown` or sends SIGTERM; then removes the socket and
/// returns. The caller exits at once (0, or 1 on an error): scans and streams
/// still open must not hold the process.
pub async fn serve<S>(service: S) -> Result<(), StartupFailed>
where
    S: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    ignore_sigint();
    // Set up AutoMTLS before the socket exists, so that a bad certificate
    // leaves nothing behind.
    let tls = match mtls::AutoMtls::from_env() {
        None => None,
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => return Err(startup_failed(&e)),
    };
    let path = socket_path().map_err(|e| startup_failed(&e.to_string()))?;
    let listener = UnixListener::bind(&path)
        .map_err(|e| startup_failed(&format!("cannot listen on {}: {e}", path.display())))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let stop = Arc::new(Notify::new());

    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(None)
        .add_service(health_service)
        .add_service(gp::grpc_controller_server::GrpcControllerServer::new(
            Controller { stop: stop.clone() },
        ))
        .add_service(gp::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(gp::grpc_broker_server::GrpcBrokerServer::new(Broker))
        .add_service(service);

    {
        let mut out = std::io::stdout().lock();
        let cert = tls.as_ref().map_or("", |t| t.server_cert_base64());
        let line = format!("{}\n", handshake_line(&path, cert));
        if out
            .write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            let _ = std::fs::remove_file(&path);
            return Err(StartupFailed(
                "the host closed stdout before the handshake".into(),
            ));
        }
    }
    silence_stdout();
    tracing::info!(socket = %path.display(), tls = tls.is_some(), "plugin serving");

    let server = match tls {
        None => tokio::spawn(router.serve_with_incoming(UnixListenerStream::new(listener))),
        Some(tls) => tokio::spawn(router.serve_with_incoming(tls.incoming(listener))),
    };
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| StartupFailed(format!("cannot handle SIGTERM: {e}")))?;
    let reason = tokio::select! {
        _ = stop.notified() => "shutdown requested",
        _ = sigterm.recv() => "SIGTERM",
        r = server => match r {
            Ok(Ok(())) => "server ended",
            Ok(Err(e)) => { tracing::error!("gRPC server failed: {e}"); "server failed" }
            Err(e) => { tracing::error!("gRPC server task failed: {e}"); "server failed" }
        },
    };
    tracing::debug!("stopping: {reason}");
    // Let the Shutdown reply reach the host, then go: open streams (stdio,
    // broker, scans) would make a graceful drain wait for ever.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
