//! Cluster DNS: a hickory-server on the node's DNS address (UDP and TCP port 53) answering
//! from an [`records::Index`] of Services and EndpointSlices, rebuilt when they change, and
//! relaying other names to the host's upstream resolvers.
//!
//! It writes nothing to the API; publishing its address behind the kube-dns Service is
//! [`crate::kube_dns`]'s job.

pub mod records;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::watch;

use records::{Answer, Index, QueryType, Rr, TTL};

/// How long a forwarded question waits for an upstream answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The nameservers of a resolv.conf text (the host's, for forwarding), loopback ones
/// included: netd runs in the host's network namespace.
pub fn upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Answers questions from the index, forwarding what is not the cluster's.
pub struct Handler {
    index: watch::Receiver<Arc<Index>>,
    domain: String,
    upstreams: Vec<SocketAddr>,
}

impl Handler {
    pub fn new(index: watch::Receiver<Arc<Index>>, domain: &str, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            index,
            domain: domain.trim_end_matches('.').to_owned(),
            upstreams,
        }
    }

    /// The zone's SOA, sent with negative answers (its minimum is their TTL).
    fn soa(&self) -> Option<Record> {
        let origin = Name::from_ascii(format!("{}.", self.domain)).ok()?;
        let mname = Name::from_ascii(format!("ns.dns.{}.", self.domain)).ok()?;
        let rname = Name::from_ascii(format!("hostmaster.{}.", self.domain)).ok()?;
        let serial = u32::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
        Some(Record::from_rdata(
            origin,
            TTL,
            RData::SOA(SOA::new(mname, rname, serial, 7200, 1800, 86400, TTL)),
        ))
    }

    /// Relays the request as it came to the upstream resolvers, first answer wins.
    async fn forward(&self, request: &Request) -> Option<Message> {
        for upstream in &self.upstreams {
            let bind: SocketAddr = if upstream.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let Ok(socket) = tokio::net::UdpSocket::bind(bind).await else {
                continue;
            };
            if socket.send_to(request.as_slice(), upstream).await.is_err() {
                continue;
            }
            let mut buffer = vec![0u8; 4096];
            if let Ok(Ok((size, _))) =
                tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv_from(&mut buffer)).await
                && let Ok(message) = Message::from_vec(&buffer[..size])
            {
                return Some(message);
            }
        }
        None
    }
}

fn query_type(kind: RecordType) -> QueryType {
    match kind {
        RecordType::A => QueryType::A,
        RecordType::AAAA => QueryType::Aaaa,
        RecordType::SRV => QueryType::Srv,
        RecordType::PTR => QueryType::Ptr,
        RecordType::CNAME => QueryType::Cname,
        RecordType::ANY => QueryType::Any,
        _ => QueryType::Other,
    }
}

fn record(rr: &Rr) -> Option<Record> {
    let name = |text: &str| Name::from_ascii(text).ok();
    Some(match rr {
        Rr::A { name: owner, address } => Record::from_rdata(name(owner)?, TTL, RData::A(A(*address))),
        Rr::Cname { name: owner, target } => {
            Record::from_rdata(name(owner)?, TTL, RData::CNAME(CNAME(name(target)?)))
        }
        Rr::Ptr { name: owner, target } => {
            Record::from_rdata(name(owner)?, TTL, RData::PTR(PTR(name(target)?)))
        }
        Rr::Srv {
            name: owner,
            priority,
            weight,
            port,
            target,
        } => Record::from_rdata(
            name(owner)?,
            TTL,
            RData::SRV(SRV::new(*priority, *weight, *port, name(target)?)),
        ),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::new(&request.queries, None);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let Some(query) = request.queries.queries().first() else {
            return send(
                &mut response,
                builder.error_msg(&request.metadata, ResponseCode::FormErr),
                request,
            )
            .await;
        };
        let name = query.name().to_string();
        let answer = self.index.borrow().answer(&name, query_type(query.query_type()));
        match answer {
            Answer::Records { answers, additionals } => {
                metadata.authoritative = true;
                let answers: Vec<Record> = answers.iter().filter_map(record).collect();
                let additionals: Vec<Record> = additionals.iter().filter_map(record).collect();
                let soa: Vec<Record> = if answers.is_empty() {
                    self.soa().into_iter().collect()
                } else {
                    Vec::new()
                };
                let message = builder.build(
                    metadata,
                    answers.iter(),
                    [].iter(),
                    soa.iter(),
                    additionals.iter(),
                );
                send(&mut response, message, request).await
            }
            Answer::NxDomain => {
                metadata.authoritative = true;
                metadata.response_code = ResponseCode::NXDomain;
                let soa: Vec<Record> = self.soa().into_iter().collect();
                let message = builder.build(metadata, [].iter(), [].iter(), soa.iter(), [].iter());
                send(&mut response, message, request).await
            }
            Answer::Forward => match self.forward(request).await {
                Some(upstream) => {
                    metadata.response_code = upstream.metadata.response_code;
                    let message = builder.build(
                        metadata,
                        upstream.answers.iter(),
                        upstream.authorities.iter(),
                        [].iter(),
                        upstream.additionals.iter(),
                    );
                    send(&mut response, message, request).await
                }
                None => {
                    send(
                        &mut response,
                        builder.error_msg(&request.metadata, ResponseCode::ServFail),
                        request,
                    )
                    .await
                }
            },
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    message: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(message).await {
        Ok(info) => info,
        Err(err) => {
            tracing::debug!(error = %err, "sending a DNS response failed");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}

/// Keeps the index current with the watched objects and serves it on `address`:53 (UDP and
/// TCP) until `shutdown`.
pub async fn run(
    mut watched: crate::watched::Watched,
    domain: String,
    address: IpAddr,
    upstreams: Vec<SocketAddr>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        () = watched.ready() => {}
    }
    let build = |watched: &crate::watched::Watched| {
        Arc::new(Index::new(
            &domain,
            watched.services.state().iter().map(AsRef::as_ref),
            watched.slices.state().iter().map(AsRef::as_ref),
        ))
    };
    let (publish, index) = watch::channel(build(&watched));
    let mut server = hickory_server::Server::new(Handler::new(index, &domain, upstreams));
    let bind = SocketAddr::new(address, 53);
    server.register_socket(tokio::net::UdpSocket::bind(bind).await?);
    server.register_listener(
        tokio::net::TcpListener::bind(bind).await?,
        Duration::from_secs(10),
        64,
    );
    tracing::info!(%bind, "serving cluster DNS");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = watched.generation.changed() => if changed.is_err() { break },
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        watched.generation.borrow_and_update();
        publish.send_replace(build(&watched));
    }
    let _ = server.shutdown_gracefully().await;
    Ok(())
}
