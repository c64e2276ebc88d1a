//! Container probes and lifecycle hook actions, as the kubelet's prober: one task per probe of
//! a running container instance (startup, readiness, liveness), probing every `periodSeconds`
//! once `initialDelaySeconds` have passed, and publishing a result only when
//! `successThreshold`/`failureThreshold` consecutive probes agree. Readiness and liveness wait
//! for the startup probe; startup and liveness stop at their first published failure (the
//! worker kills the container and a new instance gets new probes).
//!
//! The actions (exec in the container, HTTP GET, TCP connect, gRPC health check) reach the pod
//! from inside its network namespace, since pods have no routable address until netd gives
//! them one. The worker decides what a result means; this module never touches containers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::runtime::Runtime;

/// The user agent of probes (upstream's `kube-probe/MAJOR.MINOR`).
const USER_AGENT: &str = "kube-probe/1.35";
/// How much of a probe's output is kept.
const MAX_OUTPUT: usize = 10 * 1024;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    /// The name in events and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
        }
    }

    fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => container.startup_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
            Kind::Liveness => container.liveness_probe.as_ref(),
        }
    }
}

/// A published probe result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed, with the last probe's output.
    Failure(String),
}

/// What one probe or hook action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure(String),
}

/// Where actions reach a container instance.
#[derive(Clone)]
pub struct Target {
    pub runtime: Runtime,
    /// The runtime's container id.
    pub container_id: String,
    /// The pod's network namespace; `None` for host-network pods.
    pub netns: Option<PathBuf>,
    /// The address `host` defaults to (the pod IP as the kubelet uses it).
    pub pod_ip: IpAddr,
    pub container: Container,
    /// The pod, for events.
    pub pod: k8s_openapi::api::core::v1::Pod,
    pub events: super::events::Events,
}

/// Published results by container name, attempt and probe.
type Results = Arc<Mutex<HashMap<(String, u32, Kind), Outcome>>>;

/// Probe results of one pod's container instances, keyed by container name and attempt.
#[derive(Default)]
pub struct Probes {
    results: Results,
    changed: Arc<Notify>,
    tasks: HashMap<(String, u32), Vec<AbortHandle>>,
}

impl Drop for Probes {
    fn drop(&mut self) {
        for handle in self.tasks.values().flatten() {
            handle.abort();
        }
    }
}

impl Probes {
    /// Resolves when a probe published a changed result.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Starts the probe tasks of a running instance unless they run already.
    pub fn watch(&mut self, attempt: u32, started_at: jiff::Timestamp, target: &Target) {
        let key = (target.container.name.clone(), attempt);
        if self.tasks.contains_key(&key) {
            return;
        }
        let mut handles = Vec::new();
        for kind in [Kind::Startup, Kind::Readiness, Kind::Liveness] {
            let Some(probe) = kind.of(&target.container).cloned() else {
                continue;
            };
            let task = ProbeTask {
                kind,
                probe,
                attempt,
                started_at,
                target: target.clone(),
                results: self.results.clone(),
                changed: self.changed.clone(),
            };
            handles.push(tokio::spawn(task.run()).abort_handle());
        }
        self.tasks.insert(key, handles);
    }

    /// Stops the probes of every instance not in `running` and forgets their results.
    pub fn retain(&mut self, running: &[(String, u32)]) {
        self.tasks.retain(|key, handles| {
            let keep = running.contains(key);
            if !keep {
                for handle in handles.iter() {
                    handle.abort();
                }
            }
            keep
        });
        if let Ok(mut results) = self.results.lock() {
            results.retain(|(name, attempt, _), _| running.iter().any(|(n, a)| n == name && a == attempt));
        }
    }

    /// The published result of a probe of an instance, if any.
    pub fn result(&self, name: &str, attempt: u32, kind: Kind) -> Option<Outcome> {
        self.results
            .lock()
            .ok()
            .and_then(|results| results.get(&(name.to_owned(), attempt, kind)).cloned())
    }

    /// Whether the instance has started: its startup probe succeeded, or it has none.
    pub fn started(&self, container: &Container, attempt: u32) -> bool {
        container.startup_probe.is_none()
            || self.result(&container.name, attempt, Kind::Startup) == Some(Outcome::Success)
    }

    /// Whether the instance is ready: started, and its readiness probe succeeded or it has none.
    pub fn ready(&self, container: &Container, attempt: u32) -> bool {
        self.started(container, attempt)
            && (container.readiness_probe.is_none()
                || self.result(&container.name, attempt, Kind::Readiness) == Some(Outcome::Success))
    }

    /// The failure that means the instance must be killed: a failed startup or liveness probe.
    pub fn fatal(&self, container: &Container, attempt: u32) -> Option<(Kind, String)> {
        [Kind::Startup, Kind::Liveness].into_iter().find_map(|kind| {
            match self.result(&container.name, attempt, kind) {
                Some(Outcome::Failure(output)) => Some((kind, output)),
                _ => None,
            }
        })
    }
}

/// The probe's settings with upstream's defaults.
struct Settings {
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
}

impl Settings {
    fn of(probe: &Probe) -> Settings {
        let seconds = |value: Option<i32>, default: i32| {
            Duration::from_secs(u64::try_from(value.unwrap_or(default).max(0)).unwrap_or_default())
        };
        let count =
            |value: Option<i32>, default: i32| u32::try_from(value.unwrap_or(default).max(1)).unwrap_or(1);
        Settings {
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

struct ProbeTask {
    kind: Kind,
    probe: Probe,
    attempt: u32,
    started_at: jiff::Timestamp,
    target: Target,
    results: Results,
    changed: Arc<Notify>,
}

impl ProbeTask {
    fn key(&self, kind: Kind) -> (String, u32, Kind) {
        (self.target.container.name.clone(), self.attempt, kind)
    }

    fn get(&self, kind: Kind) -> Option<Outcome> {
        self.results
            .lock()
            .ok()
            .and_then(|r| r.get(&self.key(kind)).cloned())
    }

    fn publish(&self, outcome: Outcome) {
        let changed = match self.results.lock() {
            Ok(mut results) => results.insert(self.key(self.kind), outcome.clone()) != Some(outcome),
            Err(_) => false,
        };
        if changed {
            self.changed.notify_one();
        }
    }

    async fn run(self) {
        let settings = Settings::of(&self.probe);
        let span =
            tracing::debug_span!("probe", container = %self.target.container.name, kind = self.kind.name());
        let _guard = span.enter();
        drop(_guard);
        let mut ticker = tokio::time::interval(settings.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<bool> = None;
        let mut run = 0u32;
        loop {
            ticker.tick().await;
            let since_start = jiff::Timestamp::now().duration_since(self.started_at);
            if since_start.as_secs() < settings.initial_delay.as_secs() as i64 {
                continue;
            }
            let started = self.target.container.startup_probe.is_none()
                || self.get(Kind::Startup) == Some(Outcome::Success);
            match self.kind {
                Kind::Startup if started => return,
                Kind::Readiness | Kind::Liveness if !started => continue,
                _ => {}
            }
            let verdict = run_probe(&self.probe, &self.target, settings.timeout).await;
            let success = verdict == Verdict::Success;
            if last == Some(success) {
                run = run.saturating_add(1);
            } else {
                last = Some(success);
                run = 1;
            }
            match verdict {
                Verdict::Success if run >= settings.success_threshold => self.publish(Outcome::Success),
                Verdict::Failure(output) => {
                    tracing::info!(output = %output, "{} probe failed", self.kind.name());
                    self.target.events.container(
                        &self.target.pod,
                        &self.target.container.name,
                        kube::runtime::events::EventType::Warning,
                        "Unhealthy",
                        format!("{} probe failed: {output}", self.kind.name()),
                    );
                    if run >= settings.failure_threshold {
                        self.publish(Outcome::Failure(output));
                        if matches!(self.kind, Kind::Startup | Kind::Liveness) {
                            return;
                        }
                    }
                }
                Verdict::Success => {}
            }
        }
    }
}

/// Runs one probe action.
async fn run_probe(probe: &Probe, target: &Target, timeout: Duration) -> Verdict {
    if let Some(exec) = &probe.exec {
        let command = expand_static(exec.command.as_deref().unwrap_or_default(), &target.container);
        return exec_action(target, &command, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        return http_get(target, action, timeout).await;
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match resolve_port(&action.port, &target.container) {
            Ok(port) => port,
            Err(message) => return Verdict::Failure(message),
        };
        let host = action.host.as_deref().filter(|h| !h.is_empty());
        return match connect(target, host, port, timeout).await {
            Ok(_) => Verdict::Success,
            Err(message) => Verdict::Failure(message),
        };
    }
    if let Some(action) = &probe.grpc {
        let port = u16::try_from(action.port).unwrap_or_default();
        return grpc_health(target, port, action.service.as_deref().unwrap_or(""), timeout).await;
    }
    Verdict::Failure(format!(
        "missing probe handler for container {}",
        target.container.name
    ))
}

/// Runs a lifecycle hook handler (postStart, preStop) within `timeout`.
pub async fn run_hook(handler: &LifecycleHandler, target: &Target, timeout: Duration) -> Verdict {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        return exec_action(target, &command, timeout).await;
    }
    if let Some(action) = &handler.http_get {
        return http_get(target, action, timeout).await;
    }
    if let Some(sleep) = &handler.sleep {
        let seconds = u64::try_from(sleep.seconds.max(0)).unwrap_or_default();
        tokio::time::sleep(Duration::from_secs(seconds).min(timeout)).await;
        return Verdict::Success;
    }
    if handler.tcp_socket.is_some() {
        // Deprecated and a no-op upstream.
        return Verdict::Success;
    }
    Verdict::Failure("unknown hook handler".to_owned())
}

/// `$(VAR)` in probe commands expands only from the container's literal `env` values.
fn expand_static(command: &[String], container: &Container) -> Vec<String> {
    let env: HashMap<&str, &str> = container
        .env
        .iter()
        .flatten()
        .filter_map(|var| Some((var.name.as_str(), var.value.as_deref()?)))
        .collect();
    command
        .iter()
        .map(|arg| crate::pod::expansion::expand(arg, |name: &str| env.get(name).map(|v| (*v).to_owned())))
        .collect()
}

async fn exec_action(target: &Target, command: &[String], timeout: Duration) -> Verdict {
    match target
        .runtime
        .exec_capture(&target.container_id, command, timeout, MAX_OUTPUT)
        .await
    {
        Ok(output) if output.timed_out => {
            Verdict::Failure(format!("command {:?} timed out", command.join(" ")))
        }
        Ok(output) if output.exit_code == 0 => Verdict::Success,
        Ok(output) => Verdict::Failure(String::from_utf8_lossy(&output.output).into_owned()),
        Err(err) => Verdict::Failure(err.to_string()),
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(number) => number,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {name} in container {}", container.name))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `host:port` (the pod's address when `host` is empty) from the pod's network
/// namespace; the error is Go's dial error text.
async fn connect(
    target: &Target,
    host: Option<&str>,
    port: u16,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, String> {
    let host_text = host.map_or_else(|| target.pod_ip.to_string(), str::to_owned);
    let shown = join_host_port(&host_text, port);
    let netns = target.netns.clone();
    let name = host_text.clone();
    let stream = super::sandbox::run_in_netns(netns, move || connect_blocking(&name, port, timeout))
        .await
        .and_then(|connected| connected)
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                format!("dial tcp {shown}: i/o timeout")
            }
            std::io::ErrorKind::ConnectionRefused => format!("dial tcp {shown}: connect: connection refused"),
            _ => format!("dial tcp {shown}: {err}"),
        })?;
    stream
        .set_nonblocking(true)
        .map_err(|err| format!("dial tcp {shown}: {err}"))?;
    tokio::net::TcpStream::from_std(stream).map_err(|err| format!("dial tcp {shown}: {err}"))
}

fn connect_blocking(host: &str, port: u16, timeout: Duration) -> std::io::Result<std::net::TcpStream> {
    let address = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))?,
    };
    std::net::TcpStream::connect_timeout(&address, timeout)
}

/// HTTP GET as upstream's HTTP prober: status 200–399 is success, anything else a failure.
async fn http_get(target: &Target, action: &HTTPGetAction, timeout: Duration) -> Verdict {
    let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let port = match resolve_port(&action.port, &target.container) {
        Ok(port) => port,
        Err(message) => return Verdict::Failure(message),
    };
    let host = action.host.as_deref().filter(|h| !h.is_empty());
    let host_text = host.map_or_else(|| target.pod_ip.to_string(), str::to_owned);
    let mut path = action.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let url = format!("{scheme}://{}{path}", join_host_port(&host_text, port));
    let attempt = async {
        let stream = connect(target, host, port, timeout).await?;
        let mut request = http::Request::get(path.as_str());
        let mut host_header = join_host_port(&host_text, port);
        let mut user_agent = false;
        let mut accept = false;
        for header in action.http_headers.iter().flatten() {
            match header.name.to_ascii_lowercase().as_str() {
                "host" => {
                    host_header = header.value.clone();
                    continue;
                }
                "user-agent" => user_agent = true,
                "accept" => accept = true,
                _ => {}
            }
            request = request.header(header.name.as_str(), header.value.as_str());
        }
        request = request.header(http::header::HOST, host_header);
        if !user_agent {
            request = request.header(http::header::USER_AGENT, USER_AGENT);
        }
        if !accept {
            request = request.header(http::header::ACCEPT, "*/*");
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|err| err.to_string())?;
        let status = if scheme == "https" {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(insecure_tls()));
            let name =
                rustls_pki_types::ServerName::try_from(host_text.clone()).map_err(|err| err.to_string())?;
            let tls = connector
                .connect(name, stream)
                .await
                .map_err(|err| err.to_string())?;
            send(tls, request).await?
        } else {
            send(stream, request).await?
        };
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Verdict::Failure(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(message)) if message.starts_with("dial tcp") => {
            Verdict::Failure(format!("Get {url:?}: {message}"))
        }
        Ok(Err(message)) => Verdict::Failure(format!("Get {url:?}: {message}")),
        Ok(Ok(code)) if (200..400).contains(&code) => Verdict::Success,
        Ok(Ok(code)) => Verdict::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// Sends one HTTP/1.1 request and reads (a bounded part of) the answer.
async fn send<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|err| err.to_string())?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|err| err.to_string());
    let result = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut read = 0usize;
            while read < MAX_OUTPUT {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
            Ok(status)
        }
        Err(err) => Err(err),
    };
    driver.abort();
    result
}

/// Probes do not verify certificates (upstream's `InsecureSkipVerify`).
fn insecure_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        Err(_) => rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    }
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The gRPC health checking protocol (`grpc.health.v1.Health/Check`) over HTTP/2 without TLS.
async fn grpc_health(target: &Target, port: u16, service: &str, timeout: Duration) -> Verdict {
    let address = join_host_port(&target.pod_ip.to_string(), port);
    let seconds = timeout.as_secs();
    let connected = tokio::time::timeout(timeout, async {
        let stream = connect(target, None, port, timeout).await?;
        hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .map_err(|err| err.to_string())
    })
    .await;
    let (mut sender, connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(err)) => {
            return Verdict::Failure(format!(
                "timeout: failed to connect service {address:?} within {seconds}s: {err}"
            ));
        }
        Err(_) => {
            return Verdict::Failure(format!(
                "timeout: failed to connect service {address:?} within {seconds}s: context deadline exceeded"
            ));
        }
    };
    let driver = tokio::spawn(connection);
    let verdict = match tokio::time::timeout(timeout, health_check(&mut sender, &address, service)).await {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Failure(format!("timeout: health rpc did not complete within {seconds}s")),
    };
    driver.abort();
    verdict
}

async fn health_check(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    authority: &str,
    service: &str,
) -> Verdict {
    let request = http::Request::post(format!("http://{authority}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Full::new(grpc_frame(&health_check_request(service))));
    let request = match request {
        Ok(request) => request,
        Err(err) => return Verdict::Failure(format!("error: health rpc probe failed: {err}")),
    };
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(err) => return Verdict::Failure(format!("error: health rpc probe failed: {err}")),
    };
    let headers_status = grpc_status(response.headers());
    let collected = match response.into_body().collect().await {
        Ok(collected) => collected,
        Err(err) => return Verdict::Failure(format!("error: health rpc probe failed: {err}")),
    };
    let status = collected
        .trailers()
        .and_then(grpc_status)
        .or(headers_status)
        .unwrap_or((2, "missing grpc-status".to_owned()));
    match status.0 {
        0 => {}
        12 => {
            return Verdict::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.1
            ));
        }
        code => {
            return Verdict::Failure(format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                grpc_code_name(code),
                status.1
            ));
        }
    }
    let mut body = collected.to_bytes();
    let serving = parse_grpc_frame(&mut body).map(|message| health_status(&message));
    match serving {
        Some(1) => Verdict::Success,
        Some(status) => Verdict::Failure(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(status)
        )),
        None => Verdict::Failure("error: health rpc probe failed: malformed response".to_owned()),
    }
}

/// `HealthCheckRequest { string service = 1; }` in protobuf.
fn health_check_request(service: &str) -> Vec<u8> {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    message
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(data: &mut Bytes) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if !data.has_remaining() {
            return None;
        }
        let byte = data.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A length-prefixed, uncompressed gRPC message.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(message);
    Bytes::from(frame)
}

fn parse_grpc_frame(data: &mut Bytes) -> Option<Bytes> {
    if data.remaining() < 5 || data.get_u8() != 0 {
        return None;
    }
    let length = usize::try_from(data.get_u32()).ok()?;
    (data.remaining() >= length).then(|| data.split_to(length))
}

/// `HealthCheckResponse.status` (field 1, an enum); absent is UNKNOWN (0).
fn health_status(message: &Bytes) -> u64 {
    let mut data = message.clone();
    let mut status = 0;
    while data.has_remaining() {
        let Some(key) = get_varint(&mut data) else {
            break;
        };
        match key & 7 {
            0 => {
                let Some(value) = get_varint(&mut data) else {
                    break;
                };
                if key >> 3 == 1 {
                    status = value;
                }
            }
            2 => {
                let Some(length) = get_varint(&mut data).and_then(|l| usize::try_from(l).ok()) else {
                    break;
                };
                if data.remaining() < length {
                    break;
                }
                data.advance(length);
            }
            1 if data.remaining() >= 8 => data.advance(8),
            5 if data.remaining() >= 4 => data.advance(4),
            _ => break,
        }
    }
    status
}

fn serving_status_name(status: u64) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| {
            form_urlencoded::parse(format!("x={m}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some((code, message))
}

fn grpc_code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(code as usize).copied().unwrap_or("Unknown")
}

/// The loopback address pods are probed at while they have no address of their own.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn health_messages_round_trip() {
        let request = health_check_request("db");
        assert_eq!(request, vec![0x0a, 2, b'd', b'b']);
        assert!(health_check_request("").is_empty());
        let mut frame = grpc_frame(&[0x08, 0x01]);
        let message = parse_grpc_frame(&mut frame).unwrap();
        assert_eq!(health_status(&message), 1);
        // Unknown fields are skipped; an absent status is UNKNOWN.
        assert_eq!(health_status(&Bytes::from_static(&[0x12, 1, b'x', 0x08, 2])), 2);
        assert_eq!(health_status(&Bytes::new()), 0);
    }

    #[test]
    fn settings_default_as_upstream() {
        let settings = Settings::of(&Probe::default());
        assert_eq!(settings.period, Duration::from_secs(10));
        assert_eq!(settings.timeout, Duration::from_secs(1));
        assert_eq!(settings.failure_threshold, 3);
        assert_eq!(settings.success_threshold, 1);
        assert_eq!(settings.initial_delay, Duration::ZERO);
    }

    #[test]
    fn named_ports_resolve_against_the_container() {
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &container),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("81".into()), &container),
            Ok(81)
        );
        assert_eq!(resolve_port(&IntOrString::Int(80), &container), Ok(80));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &container).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &container).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_reach_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = vec![0u8; 4096];
                    let n = socket.read(&mut buffer).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    let code = if request.starts_with("GET /healthy ") {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    assert!(
                        request.contains("User-Agent: kube-probe/1.35")
                            || request.contains("user-agent: kube-probe/1.35")
                    );
                    let _ = socket
                        .write_all(format!("HTTP/1.1 {code}\r\ncontent-length: 2\r\n\r\nok").as_bytes())
                        .await;
                });
            }
        });
        let target = Target {
            runtime: Runtime::new("/nonexistent", "/nonexistent"),
            container_id: "x".to_owned(),
            netns: None,
            pod_ip: LOOPBACK,
            container: Container::default(),
            pod: k8s_openapi::api::core::v1::Pod::default(),
            // Nothing listens there: events are dropped.
            events: super::super::events::Events::new(
                kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap(),
                "node",
            ),
        };
        let tcp = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::Int(i32::from(port)),
                host: None,
            }),
            ..Probe::default()
        };
        assert_eq!(
            run_probe(&tcp, &target, Duration::from_secs(1)).await,
            Verdict::Success
        );
        let get = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_owned()),
                port: IntOrString::Int(i32::from(port)),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        assert_eq!(
            run_probe(&get("/healthy"), &target, Duration::from_secs(1)).await,
            Verdict::Success
        );
        assert_eq!(
            run_probe(&get("/sick"), &target, Duration::from_secs(1)).await,
            Verdict::Failure("HTTP probe failed with statuscode: 503".to_owned())
        );
        // Nothing listens on port 1.
        let closed = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::Int(1),
                host: None,
            }),
            ..Probe::default()
        };
        assert_eq!(
            run_probe(&closed, &target, Duration::from_secs(1)).await,
            Verdict::Failure("dial tcp 127.0.0.1:1: connect: connection refused".to_owned())
        );
    }
}
