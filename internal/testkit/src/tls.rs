//! TLS and plain TCP servers on loopback, with certificates made by `rcgen` at run time.
//!
//! - [`TestCa`]: a certificate authority for tests; give [`TestCa::der`] to a checker as an
//!   extra root. [`TestCa::shared`] is the one every [`TlsServer::start`] issues from.
//! - [`TlsServer`]: completes TLS handshakes with a certificate of a chosen [`CertKind`]
//!   (valid, expiring soon, expired, from an unknown CA, for another name), then writes
//!   [`GREETING`] and closes.
//! - [`TlsServer::starttls`]: speaks the plain-text upgrade of SMTP, IMAP or PostgreSQL
//!   ([`Upgrade`]), then completes a TLS handshake as a [`TlsServer`] does; or refuses the
//!   upgrade ([`TlsServer::starttls_refusing`]).
//! - [`TcpServer`]: accepts TCP connections and counts them, and either keeps them open
//!   without a word (a TLS client waits in vain for the handshake) or closes them at once.
//! - [`closed_port`]: a loopback port where nothing listens, for refused connections.
//!
//! Leaf certificates name `localhost` and `127.0.0.1` (except [`CertKind::WrongName`]) and
//! have the subject common name [`SERVER_CN`]. Every server stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The common name of [`TestCa::shared`].
pub const CA_CN: &str = "upwatch test ca";
/// The common name of the CA that signs [`CertKind::UnknownCa`] certificates, which no
/// checker trusts.
pub const UNKNOWN_CA_CN: &str = "upwatch unknown test ca";
/// The subject common name of every leaf certificate.
pub const SERVER_CN: &str = "upwatch test server";
/// The only name a [`CertKind::WrongName`] certificate is valid for.
pub const WRONG_NAME: &str = "other.test";
/// What a [`TlsServer`] writes after each handshake, before it closes.
pub const GREETING: &str = "hello from upwatch tls test server\n";
/// How many days a [`CertKind::Valid`] certificate has left.
pub const VALID_DAYS: u32 = 90;

/// How long a server waits for a client to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority for tests, with its key; it is valid from a day ago for ten years.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>`.
    ///
    /// # Panics
    ///
    /// Panics when rcgen cannot make a key or a certificate, which no test can work around.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate().expect("generate a CA key");
        let cert = params.self_signed(&key).expect("self-sign the test CA");
        TestCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA (`CN=` [`CA_CN`]) that [`TlsServer::start`] issues from, one per test process.
    pub fn shared() -> &'static TestCa {
        static SHARED: OnceLock<TestCa> = OnceLock::new();
        SHARED.get_or_init(|| TestCa::new(CA_CN))
    }

    /// The CA's certificate as PEM, for a file that `UPWATCH_CHECK_CA_FILE` names.
    pub fn pem(&self) -> String {
        self.pem.clone()
    }

    /// The CA's certificate (DER), to trust it: `CheckerConfig { extra_roots: vec![ca.der()] }`.
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses) valid between the two
    /// times, with the chain to send (leaf, then this CA) and its key.
    fn issue(
        &self,
        names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("valid certificate names");
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_CN);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().expect("generate a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        (
            vec![cert.der().clone(), self.der()],
            PrivateKeyDer::from(key),
        )
    }
}

/// The certificate a [`TlsServer`] presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the CA, for `localhost` and `127.0.0.1`, expiring in [`VALID_DAYS`] days.
    Valid,
    /// As [`CertKind::Valid`] but expiring in this many days.
    ExpiresIn(u32),
    /// As [`CertKind::Valid`] but expired a day ago (valid for the 30 days before).
    Expired,
    /// As [`CertKind::Valid`] but signed by another CA (`CN=` [`UNKNOWN_CA_CN`]).
    UnknownCa,
    /// As [`CertKind::Valid`] but for [`WRONG_NAME`] only.
    WrongName,
}

/// A running loopback TLS server; see the module documentation.
pub struct TlsServer {
    addr: SocketAddr,
    leaf: CertificateDer<'static>,
    handshakes: Arc<AtomicU64>,
    _shutdown: DropGuard,
}

impl TlsServer {
    /// Serves a `kind` certificate issued by [`TestCa::shared`] on `127.0.0.1`, on a free port.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or a certificate cannot be made.
    pub async fn start(kind: CertKind) -> TlsServer {
        TlsServer::start_with(TestCa::shared(), kind).await
    }

    /// As [`TlsServer::start`], with a certificate issued by `ca` (except for
    /// [`CertKind::UnknownCa`], which is always signed by a CA of its own).
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or a certificate cannot be made.
    pub async fn start_with(ca: &TestCa, kind: CertKind) -> TlsServer {
        TlsServer::launch(ca, kind, None).await
    }

    /// Speaks `upgrade`, then completes the TLS handshake with a `kind` certificate issued by
    /// [`TestCa::shared`], on `127.0.0.1`, on a free port. After a handshake it writes
    /// [`GREETING`] and closes, as [`TlsServer::start`]'s server does. Its
    /// [`url`](TlsServer::url) is that of a `tls://` monitor, which sets `starttls` besides.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or a certificate cannot be made.
    pub async fn starttls(upgrade: Upgrade, kind: CertKind) -> TlsServer {
        TlsServer::launch(TestCa::shared(), kind, Some((upgrade, false))).await
    }

    /// Speaks `upgrade` but refuses to go on to TLS (see [`Upgrade`] for how), then waits for
    /// the client to close.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or a certificate cannot be made.
    pub async fn starttls_refusing(upgrade: Upgrade) -> TlsServer {
        TlsServer::launch(TestCa::shared(), CertKind::Valid, Some((upgrade, true))).await
    }

    /// Binds a free loopback port and serves: `preamble`'s upgrade first (refused when its
    /// flag is set), then the handshake and [`GREETING`].
    async fn launch(ca: &TestCa, kind: CertKind, preamble: Option<(Upgrade, bool)>) -> TlsServer {
        let (acceptor, leaf) = acceptor(ca, kind);
        let listener = bind().await;
        let addr = listener.local_addr().expect("read the bound address");
        let handshakes = Arc::new(AtomicU64::new(0));
        let token = CancellationToken::new();
        let stop = token.clone();
        let counter = handshakes.clone();
        tokio::spawn(async move {
            serve(listener, stop, move |stream, stop| {
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                async move {
                    let Some((upgrade, refuse)) = preamble else {
                        greet_over_tls(&acceptor, stream, &stop, &counter).await;
                        return;
                    };
                    let mut io = BufReader::new(stream);
                    let preamble = tokio::time::timeout(
                        HANDSHAKE_TIMEOUT,
                        starttls_preamble(&mut io, upgrade, refuse),
                    );
                    let agreed = tokio::select! {
                        _ = stop.cancelled() => return,
                        agreed = preamble => matches!(agreed, Ok(Ok(true))),
                    };
                    if !agreed {
                        // Let the client read the refusal and leave first.
                        let mut buf = [0u8; 1024];
                        let drained = async { while let Ok(1..) = io.read(&mut buf).await {} };
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, drained) => {}
                        }
                        return;
                    }
                    greet_over_tls(&acceptor, io, &stop, &counter).await;
                }
            })
            .await;
        });
        TlsServer {
            addr,
            leaf,
            handshakes,
            _shutdown: token.drop_guard(),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of a TLS monitor of this server: `tls://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tls://{}", self.addr)
    }

    /// The leaf certificate the server presents (DER).
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.leaf.clone()
    }

    /// How many handshakes have completed so far.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::SeqCst)
    }
}

/// An acceptor that presents a `kind` certificate issued by `ca` (except for
/// [`CertKind::UnknownCa`]), and the leaf certificate.
fn acceptor(ca: &TestCa, kind: CertKind) -> (TlsAcceptor, CertificateDer<'static>) {
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let valid = (now - day, now + time::Duration::days(VALID_DAYS.into()));
    let usual: &[&str] = &["localhost", "127.0.0.1"];
    let (chain, key) = match kind {
        CertKind::Valid => ca.issue(usual, valid.0, valid.1),
        CertKind::ExpiresIn(days) => {
            ca.issue(usual, valid.0, now + time::Duration::days(days.into()))
        }
        CertKind::Expired => ca.issue(usual, now - time::Duration::days(31), now - day),
        CertKind::UnknownCa => TestCa::new(UNKNOWN_CA_CN).issue(usual, valid.0, valid.1),
        CertKind::WrongName => ca.issue(&[WRONG_NAME], valid.0, valid.1),
    };
    let leaf = chain[0].clone();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the server certificate and key match");
    (TlsAcceptor::from(Arc::new(config)), leaf)
}

/// The plain-text protocol a [`TlsServer::starttls`] speaks before its TLS handshake.
///
/// The testkit does not depend on `upwatch-core`, so this mirrors its `Starttls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// SMTP (RFC 3207): a two-line `220` greeting, a `250` answer to `EHLO` that lists
    /// `STARTTLS`, and `220 2.0.0 Ready to start TLS` to `STARTTLS`.
    ///
    /// Refusing, the `EHLO` answer lists no `STARTTLS`, and `STARTTLS` is answered
    /// [`SMTP_REFUSAL`].
    Smtp,
    /// IMAP (RFC 3501): the greeting `* OK [CAPABILITY IMAP4rev1 STARTTLS ...] ...`, and
    /// `<tag> OK Begin TLS negotiation now` to `<tag> STARTTLS`.
    ///
    /// Refusing, `<tag> STARTTLS` is answered `<tag> ` [`IMAP_REFUSAL`].
    Imap,
    /// PostgreSQL: `S` to an `SSLRequest`; refusing, `N`.
    Postgres,
}

/// What a refusing SMTP [`TlsServer::starttls`] answers to `STARTTLS`, should a client send it
/// although the server does not list it.
pub const SMTP_REFUSAL: &str = "454 4.7.0 TLS not available";
/// What a refusing IMAP [`TlsServer::starttls`] answers to `STARTTLS`, after the tag.
pub const IMAP_REFUSAL: &str = "NO STARTTLS is not available here";

/// The PostgreSQL `SSLRequest`: the length (8), then the code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// The longest line a [`TlsServer::starttls`] reads during its preamble.
const MAX_LINE: u64 = 4096;

/// Completes a TLS handshake on `io` (bounded, and ended by `stop`), counts it, writes
/// [`GREETING`] and closes. A client that refuses the certificate ends the handshake, as it
/// should; a client gone right after its handshake makes the write fail, which is expected.
async fn greet_over_tls<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
    stop: &CancellationToken,
    counter: &AtomicU64,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io));
    let mut tls = tokio::select! {
        _ = stop.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            _ => return,
        },
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let _ = tls.write_all(GREETING.as_bytes()).await;
    let _ = tls.shutdown().await;
}

/// Plays the server's side of `upgrade`'s preamble on `io`; `Ok(true)` when the client
/// asked for TLS and the server agreed, so that the handshake comes next.
async fn starttls_preamble(
    io: &mut BufReader<TcpStream>,
    upgrade: Upgrade,
    refuse: bool,
) -> std::io::Result<bool> {
    match upgrade {
        Upgrade::Smtp => {
            io.write_all(
                b"220-upwatch.test ESMTP upwatch test server\r\n220 upwatch.test ready\r\n",
            )
            .await?;
            let ehlo = read_line(io).await?;
            if !ehlo.to_ascii_uppercase().starts_with("EHLO ") {
                io.write_all(b"503 5.5.1 EHLO first\r\n").await?;
                return Ok(false);
            }
            let extensions: &[u8] = if refuse {
                b"250-upwatch.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
            } else {
                b"250-upwatch.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            };
            io.write_all(extensions).await?;
            let command = read_line(io).await?;
            if !command.eq_ignore_ascii_case("STARTTLS") {
                io.write_all(b"502 5.5.2 command not recognized\r\n")
                    .await?;
                return Ok(false);
            }
            if refuse {
                io.write_all(format!("{SMTP_REFUSAL}\r\n").as_bytes())
                    .await?;
                return Ok(false);
            }
            io.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            Ok(true)
        }
        Upgrade::Imap => {
            io.write_all(
                b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] upwatch test server ready\r\n",
            )
            .await?;
            let line = read_line(io).await?;
            let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
            let answer = if !command.eq_ignore_ascii_case("STARTTLS") {
                format!("{tag} BAD only STARTTLS here")
            } else if refuse {
                format!("{tag} {IMAP_REFUSAL}")
            } else {
                format!("{tag} OK Begin TLS negotiation now")
            };
            io.write_all(format!("{answer}\r\n").as_bytes()).await?;
            Ok(command.eq_ignore_ascii_case("STARTTLS") && !refuse)
        }
        Upgrade::Postgres => {
            let mut request = [0u8; 8];
            io.read_exact(&mut request).await?;
            if request != SSL_REQUEST {
                return Ok(false);
            }
            io.write_all(if refuse { b"N" } else { b"S" }).await?;
            Ok(!refuse)
        }
    }
}

/// A line from the client without its line ending; the end of the stream is an error.
async fn read_line(io: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    let n = (&mut *io).take(MAX_LINE).read_line(&mut line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// What a [`TcpServer`] does with the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpBehaviour {
    /// Reads and discards whatever comes, never writes, until the client leaves.
    Silent,
    /// Closes each connection as soon as it is accepted.
    Close,
}

/// A running loopback TCP server that counts the connections it accepts.
pub struct TcpServer {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    _shutdown: DropGuard,
}

impl TcpServer {
    /// Accepts connections on `127.0.0.1`, on a free port, and keeps each open without
    /// writing a byte until the client closes it or the server is dropped: a TLS client
    /// waits there for a handshake that never comes.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound.
    pub async fn start() -> TcpServer {
        TcpServer::start_as(TcpBehaviour::Silent).await
    }

    /// As [`TcpServer::start`], but closes each connection as soon as it is accepted.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound.
    pub async fn start_closing() -> TcpServer {
        TcpServer::start_as(TcpBehaviour::Close).await
    }

    async fn start_as(behaviour: TcpBehaviour) -> TcpServer {
        let listener = bind().await;
        let addr = listener.local_addr().expect("read the bound address");
        let accepted = Arc::new(AtomicU64::new(0));
        let token = CancellationToken::new();
        let stop = token.clone();
        let counter = accepted.clone();
        tokio::spawn(async move {
            serve(listener, stop, move |mut stream, stop| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if behaviour == TcpBehaviour::Close {
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            read = stream.read(&mut buf) => match read {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            },
                        }
                    }
                }
            })
            .await;
        });
        TcpServer {
            addr,
            accepted,
            _shutdown: token.drop_guard(),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of a TCP monitor of this server: `tcp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// How many connections have been accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A loopback port where nothing listens, so that connecting to it is refused.
///
/// The port was free a moment ago; another process could take it in between, which on a
/// test machine is rare enough to accept.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
    listener
        .local_addr()
        .expect("read the bound address")
        .port()
}

async fn bind() -> TcpListener {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind a loopback port for the test server")
}

/// Accepts connections until `stop` is cancelled, handling each in a task of its own that is
/// given a token cancelled with `stop`.
async fn serve<F, Fut>(listener: TcpListener, stop: CancellationToken, mut handle: F)
where
    F: FnMut(TcpStream, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, stop.child_token()));
            }
            // A failed accept (too many open files, say) only loses that connection; the pause
            // keeps a lasting failure from spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
