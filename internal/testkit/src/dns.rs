//! A DNS server on loopback with fixed records, for DNS checks to query.
//!
//! [`DnsServer::start`] binds `127.0.0.1:0` over UDP, and the same port over TCP, and answers
//! every query from a [`DnsRecords`] table:
//!
//! | the name asked for | answer |
//! | --- | --- |
//! | has records of the type asked | `NOERROR` with those records (TTL 60) |
//! | has records, none of that type | `NOERROR` with no answer (NODATA) |
//! | marked [`DnsRecords::servfail`] | `SERVFAIL` |
//! | marked [`DnsRecords::refused`] | `REFUSED` |
//! | anything else | `NXDOMAIN` |
//!
//! A name marked [`DnsRecords::truncate_udp`] is answered over UDP with the truncation bit
//! and no records, so that a client has to ask again over TCP, where it gets the full answer.
//! Names match without regard to case or a trailing dot. A datagram that is no DNS query is
//! ignored (but counted). Every query is counted, see [`DnsServer::queries`]. The server stops
//! when the [`DnsServer`] is dropped.
//!
//! ```no_run
//! # async fn example() {
//! use std::net::Ipv4Addr;
//! use upwatch_testkit::dns::{DnsRecord, DnsRecords, DnsServer};
//!
//! let server = DnsServer::start(
//!     DnsRecords::new()
//!         .with("example.test", DnsRecord::A(Ipv4Addr::new(192, 0, 2, 1)))
//!         .with("example.test", DnsRecord::mx(10, "mail.example.test"))
//!         .servfail("broken.test"),
//! )
//! .await;
//! let url = server.url(); // dns://127.0.0.1:PORT
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The TTL of every record served.
pub const TTL: u32 = 60;

/// One record's data; its type follows from the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRecord {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name the name is an alias of.
    Cname(String),
    /// A mail exchanger with its preference.
    Mx { preference: u16, exchange: String },
    /// A name server of the zone.
    Ns(String),
    /// Text, as one or more character strings.
    Txt(Vec<String>),
    /// The zone's start of authority.
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: i32,
        retry: i32,
        expire: i32,
        minimum: u32,
    },
    /// A service location.
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// The name an address maps back to.
    Ptr(String),
}

impl DnsRecord {
    /// An MX record.
    pub fn mx(preference: u16, exchange: &str) -> DnsRecord {
        DnsRecord::Mx {
            preference,
            exchange: exchange.to_string(),
        }
    }

    /// A TXT record of one character string.
    pub fn txt(text: &str) -> DnsRecord {
        DnsRecord::Txt(vec![text.to_string()])
    }

    /// An SRV record.
    pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> DnsRecord {
        DnsRecord::Srv {
            priority,
            weight,
            port,
            target: target.to_string(),
        }
    }

    fn record_type(&self) -> RecordType {
        match self {
            DnsRecord::A(_) => RecordType::A,
            DnsRecord::Aaaa(_) => RecordType::AAAA,
            DnsRecord::Cname(_) => RecordType::CNAME,
            DnsRecord::Mx { .. } => RecordType::MX,
            DnsRecord::Ns(_) => RecordType::NS,
            DnsRecord::Txt(_) => RecordType::TXT,
            DnsRecord::Soa { .. } => RecordType::SOA,
            DnsRecord::Srv { .. } => RecordType::SRV,
            DnsRecord::Ptr(_) => RecordType::PTR,
        }
    }

    /// The record's data; `None` when a name in it is not a domain name.
    fn rdata(&self) -> Option<RData> {
        let name = |text: &str| Name::from_ascii(text).ok().map(fqdn);
        Some(match self {
            DnsRecord::A(ip) => RData::A(A(*ip)),
            DnsRecord::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            DnsRecord::Cname(target) => RData::CNAME(CNAME(name(target)?)),
            DnsRecord::Mx {
                preference,
                exchange,
            } => RData::MX(MX::new(*preference, name(exchange)?)),
            DnsRecord::Ns(target) => RData::NS(NS(name(target)?)),
            DnsRecord::Txt(strings) => RData::TXT(TXT::new(strings.clone())),
            DnsRecord::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            } => RData::SOA(SOA::new(
                name(mname)?,
                name(rname)?,
                *serial,
                *refresh,
                *retry,
                *expire,
                *minimum,
            )),
            DnsRecord::Srv {
                priority,
                weight,
                port,
                target,
            } => RData::SRV(SRV::new(*priority, *weight, *port, name(target)?)),
            DnsRecord::Ptr(target) => RData::PTR(PTR(name(target)?)),
        })
    }
}

/// The table a [`DnsServer`] answers from; build it with [`DnsRecords::with`] and friends.
#[derive(Debug, Clone, Default)]
pub struct DnsRecords {
    records: HashMap<String, Vec<DnsRecord>>,
    servfail: HashSet<String>,
    refused: HashSet<String>,
    truncate_udp: HashSet<String>,
}

impl DnsRecords {
    /// An empty table: every name is `NXDOMAIN`.
    pub fn new() -> DnsRecords {
        DnsRecords::default()
    }

    /// Adds `record` to `name`'s records, after those already there.
    pub fn with(mut self, name: &str, record: DnsRecord) -> DnsRecords {
        self.records.entry(key(name)).or_default().push(record);
        self
    }

    /// Makes queries for `name` fail with `SERVFAIL`.
    pub fn servfail(mut self, name: &str) -> DnsRecords {
        self.servfail.insert(key(name));
        self
    }

    /// Makes queries for `name` fail with `REFUSED`.
    pub fn refused(mut self, name: &str) -> DnsRecords {
        self.refused.insert(key(name));
        self
    }

    /// Answers queries for `name` over UDP with the truncation bit and no records, so that
    /// the client asks again over TCP.
    pub fn truncate_udp(mut self, name: &str) -> DnsRecords {
        self.truncate_udp.insert(key(name));
        self
    }

    /// The response to `query` (already parsed), over UDP or not.
    fn respond(&self, query: &Message, udp: bool) -> Message {
        let mut response = Message::new(
            query.metadata.id,
            MessageType::Response,
            query.metadata.op_code,
        );
        response.metadata = Metadata::response_from_request(&query.metadata);
        response.metadata.authoritative = true;
        response.add_queries(query.queries.iter().cloned());
        let Some(question) = query.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        let name = key(&question.name().to_ascii());
        let code = if self.servfail.contains(&name) {
            ResponseCode::ServFail
        } else if self.refused.contains(&name) {
            ResponseCode::Refused
        } else if let Some(records) = self.records.get(&name) {
            if udp && self.truncate_udp.contains(&name) {
                response.metadata.truncation = true;
            } else {
                let owner = fqdn(question.name().clone());
                response.add_answers(
                    records
                        .iter()
                        .filter(|r| r.record_type() == question.query_type())
                        .filter_map(DnsRecord::rdata)
                        .map(|data| Record::from_rdata(owner.clone(), TTL, data)),
                );
            }
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        response.metadata.response_code = code;
        response
    }
}

/// A table key: lower-case, without the trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

/// What the serving tasks share with the handle.
struct Shared {
    records: DnsRecords,
    queries: AtomicU64,
}

/// A running loopback DNS server; see the module documentation for what it answers.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: DropGuard,
}

impl DnsServer {
    /// Binds `127.0.0.1` on a free port, UDP and TCP alike, and answers from `records` in
    /// background tasks until dropped.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound for both, which no test can work around.
    pub async fn start(records: DnsRecords) -> DnsServer {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("read the bound address");
        let shared = Arc::new(Shared {
            records,
            queries: AtomicU64::new(0),
        });
        let token = CancellationToken::new();
        tokio::spawn(serve_udp(udp, shared.clone(), token.clone()));
        tokio::spawn(serve_tcp(tcp, shared.clone(), token.clone()));
        DnsServer {
            addr,
            shared,
            _shutdown: token.drop_guard(),
        }
    }

    /// The address the server listens on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of a DNS monitor querying this server: `dns://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("dns://{}", self.addr)
    }

    /// How many messages have reached the server so far, over UDP and TCP.
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::SeqCst)
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback UDP port for the dns server");
        let addr = udp.local_addr().expect("read the bound address");
        // The UDP port's TCP twin is almost always free; try another pair when it is not.
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port was free for both UDP and TCP after {ATTEMPTS} attempts");
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>, stop: CancellationToken) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, peer) = tokio::select! {
            () = stop.cancelled() => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                // A client's ICMP error can surface here; the socket itself is fine.
                Err(_) => continue,
            },
        };
        shared.queries.fetch_add(1, Ordering::SeqCst);
        let Some(answer) = answer(&shared.records, &buf[..len], true) else {
            continue;
        };
        // A client that went away is no concern of the server's.
        let _ = socket.send_to(&answer, peer).await;
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = serve_connection(stream, &shared) => {}
            }
        });
    }
}

/// Answers length-prefixed queries on one connection until the client closes it.
async fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        shared.queries.fetch_add(1, Ordering::SeqCst);
        let Some(answer) = answer(&shared.records, &buf, false) else {
            return;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The encoded answer to the query in `bytes`; `None` for anything that is not a query.
fn answer(records: &DnsRecords, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(bytes).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    records.respond(&query, udp).to_vec().ok()
}
