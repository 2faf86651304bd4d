//! An SMTP receiver on loopback, standing in for a mail server in the email channel's tests:
//! it speaks enough of RFC 5321 for `lettre` (greeting, `EHLO`/`HELO`, `STARTTLS`, `AUTH PLAIN`
//! and `AUTH LOGIN`, `MAIL FROM`, `RCPT TO`, `DATA` with dot-unstuffing, `RSET`, `NOOP`,
//! `QUIT`), records every mail it accepts ([`Mail`]) and answers with scripted failures
//! ([`SmtpReceiver::reply`]) so that tests cover how SMTP replies are sorted.
//!
//! Why hand-written: the embeddable SMTP servers on crates.io do not fit. `mailin-embedded`
//! blocks a thread pool, reads its certificate from files and offers STARTTLS only (no
//! implicit TLS); `mogimail` has neither TLS nor AUTH; the mocking frameworks bring a server
//! of their own to configure. This one is some 600 lines on tokio and rustls (ring), the
//! stack the rest of the testkit uses.
//!
//! Modes ([`Security`]): plain text; `STARTTLS` offered in the `EHLO` answer (RFC 3207); or TLS
//! from the first byte (RFC 8314, "implicit TLS", the `security: tls` of a channel). The
//! certificate names `localhost` and `127.0.0.1` and is issued by a CA of this module
//! ([`SmtpReceiver::ca_pem`], the one to trust; `tls::TestCa` keeps its signing key to
//! itself). With credentials ([`SmtpReceiver::start_with_credentials`]) the `EHLO` answer
//! lists `AUTH PLAIN LOGIN` (after `STARTTLS` only, in that mode, as real servers do),
//! `MAIL FROM` needs a successful `AUTH` first (`530`), and a wrong user name or password is
//! answered `535 5.7.8`. `8BITMIME` and `SMTPUTF8` are always listed.
//!
//! Loopback only, real TCP and TLS, no mocks. The receiver stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The name the receiver gives itself in its greeting and `EHLO` answer.
pub const HOSTNAME: &str = "upwatch.test";
/// The common name of the CA that issues the receiver's certificate.
pub const CA_CN: &str = "upwatch smtp test ca";
/// The most bytes of one mail kept; a longer one is refused with `552`.
pub const MAX_DATA: usize = 10 * 1024 * 1024;

/// The longest command line read (RFC 5321 allows 512; AUTH answers may be longer).
const MAX_LINE: u64 = 8192;
/// How long the receiver waits for a client's next line or handshake.
const IDLE: Duration = Duration::from_secs(30);

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text only: `STARTTLS` is not offered.
    Plain,
    /// Plain text first, `STARTTLS` offered in the `EHLO` answer.
    StartTls,
    /// TLS from the first byte (implicit TLS, port 465 in real life).
    Tls,
}

/// The command a scripted reply answers ([`SmtpReceiver::reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `AUTH`, answered once the client has given its credentials.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// The end of `DATA` (the lone `.`): the reply that accepts or refuses the mail.
    Data,
}

/// One accepted mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The `MAIL FROM` address, without `<>`.
    pub from: String,
    /// The `RCPT TO` addresses that were accepted, in order, without `<>`.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, CRLF line ends), dot-unstuffed,
    /// without the final `.` line.
    pub data: String,
    /// The user name of a successful `AUTH`, if any.
    pub authenticated_as: Option<String>,
    /// Whether the mail came over TLS (implicit or after `STARTTLS`).
    pub tls: bool,
}

struct Config {
    security: Security,
    credentials: Option<(String, String)>,
}

#[derive(Default)]
struct Inner {
    mails: Vec<Mail>,
    commands: Vec<String>,
    script: HashMap<Stage, VecDeque<String>>,
}

struct Shared {
    config: Config,
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next scripted reply to `stage`, if one is queued.
    fn scripted(&self, stage: Stage) -> Option<String> {
        self.lock().script.get_mut(&stage)?.pop_front()
    }
}

/// A running SMTP receiver; see the module documentation.
pub struct SmtpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _shutdown: DropGuard,
}

impl SmtpReceiver {
    /// Starts a receiver on `127.0.0.1` at a free port, without AUTH.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or the certificate cannot be made.
    pub async fn start(security: Security) -> SmtpReceiver {
        SmtpReceiver::launch(security, None).await
    }

    /// Starts a receiver that offers `AUTH PLAIN LOGIN` and accepts only `username` with
    /// `password`.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound or the certificate cannot be made.
    pub async fn start_with_credentials(
        security: Security,
        username: &str,
        password: &str,
    ) -> SmtpReceiver {
        SmtpReceiver::launch(security, Some((username.into(), password.into()))).await
    }

    async fn launch(security: Security, credentials: Option<(String, String)>) -> SmtpReceiver {
        let acceptor = tls().1.clone();
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for the SMTP receiver");
        let addr = listener.local_addr().expect("read the bound address");
        let shared = Arc::new(Shared {
            config: Config {
                security,
                credentials,
            },
            inner: Mutex::new(Inner::default()),
            count: watch::Sender::new(0),
        });
        let token = CancellationToken::new();
        let stop = token.clone();
        let state = shared.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((tcp, _)) = accepted else {
                    // A failed accept only loses that connection; the pause keeps a lasting
                    // failure from spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (state, acceptor, stop) = (state.clone(), acceptor.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = converse(tcp, &state, &acceptor) => {}
                    }
                });
            }
        });
        SmtpReceiver {
            addr,
            shared,
            _shutdown: token.drop_guard(),
        }
    }

    /// The PEM certificate of the CA that issued the receiver's certificate: trust it to
    /// connect over TLS.
    pub fn ca_pem() -> String {
        tls().0.clone()
    }

    /// The address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1`, the host to connect to (the certificate names it and `localhost`).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port the receiver listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers the next `stage` command with `reply` (a whole reply line such as
    /// `451 4.3.0 try again`) instead of the usual answer; replies queue per stage. A `2xx`
    /// reply lets the command succeed, any other fails it; after a `421` the receiver closes
    /// the connection, as RFC 5321 says a server that shuts down does.
    pub fn reply(&self, stage: Stage, reply: &str) {
        self.shared
            .lock()
            .script
            .entry(stage)
            .or_default()
            .push_back(reply.to_string());
    }

    /// Every mail accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.lock().mails.clone()
    }

    /// The commands received so far, over every connection, in order: the verb in upper case
    /// (`EHLO`, `STARTTLS`, `MAIL`...) and, for `AUTH`, its mechanism (`AUTH PLAIN`); never an
    /// argument, so never a credential.
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.clone()
    }

    /// Waits until at least `n` mails were accepted and returns them all.
    ///
    /// # Panics
    ///
    /// Panics when `deadline` passes first, saying how many arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Mail> {
        let mut rx = self.shared.count.subscribe();
        if tokio::time::timeout(deadline, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "the SMTP receiver accepted {} mail(s) within {deadline:?}, expected at least {n} \
                 (commands: {:?})",
                self.mails().len(),
                self.commands()
            );
        }
        self.mails()
    }
}

/// The CA's PEM and an acceptor presenting a leaf certificate for `localhost` and
/// `127.0.0.1` that it issued; one per test process.
fn tls() -> &'static (String, TlsAcceptor) {
    static TLS: OnceLock<(String, TlsAcceptor)> = OnceLock::new();
    TLS.get_or_init(|| {
        let now = OffsetDateTime::now_utc();
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("empty CA params");
        ca.distinguished_name.push(DnType::CommonName, CA_CN);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(3650);
        let ca_key = KeyPair::generate().expect("generate a CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("self-sign the SMTP test CA");
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
            .expect("valid certificate names");
        leaf.distinguished_name
            .push(DnType::CommonName, "upwatch smtp test receiver");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(90);
        let key = KeyPair::generate().expect("generate a server key");
        let cert = leaf
            .signed_by(&key, &issuer)
            .expect("sign the server certificate");
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default protocol versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone(), ca_cert.der().clone()],
                    PrivateKeyDer::from(key),
                )
                .expect("the server certificate and key match");
        (ca_cert.pem(), TlsAcceptor::from(Arc::new(config)))
    })
}

/// A stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

/// What one connection has said so far.
#[derive(Default)]
struct Session {
    tls: bool,
    greeted: bool,
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

/// One connection, from the greeting to `QUIT` (or the client leaving).
async fn converse(tcp: TcpStream, shared: &Shared, acceptor: &TlsAcceptor) -> std::io::Result<()> {
    let config = &shared.config;
    let implicit = config.security == Security::Tls;
    let stream: Box<dyn Io> = if implicit {
        Box::new(within(acceptor.accept(tcp)).await?)
    } else {
        Box::new(tcp)
    };
    let mut io: Conn = BufReader::new(stream);
    let mut s = Session {
        tls: implicit,
        ..Session::default()
    };
    send(
        &mut io,
        &format!("220 {HOSTNAME} ESMTP upwatch test receiver"),
    )
    .await?;
    loop {
        let Some(line) = read_line(&mut io).await? else {
            return Ok(());
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim().to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let logged = if verb == "AUTH" {
            let mechanism = arg.split(' ').next().unwrap_or("").to_ascii_uppercase();
            format!("AUTH {mechanism}")
        } else {
            verb.clone()
        };
        shared.lock().commands.push(logged);
        let reply = match verb.as_str() {
            "EHLO" => {
                s = Session {
                    tls: s.tls,
                    greeted: true,
                    ..Session::default()
                };
                let mut lines = vec![format!("{HOSTNAME} greets {arg}")];
                if config.security == Security::StartTls && !s.tls {
                    lines.push("STARTTLS".into());
                }
                if config.credentials.is_some() && (s.tls || config.security == Security::Plain) {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                lines.extend(["8BITMIME".into(), "SMTPUTF8".into(), "SIZE 10485760".into()]);
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                    .collect::<Vec<_>>()
                    .join("\r\n")
            }
            "HELO" => {
                s = Session {
                    tls: s.tls,
                    greeted: true,
                    ..Session::default()
                };
                format!("250 {HOSTNAME}")
            }
            "STARTTLS" if config.security != Security::StartTls => {
                "502 5.5.1 STARTTLS not available".into()
            }
            "STARTTLS" if s.tls => "503 5.5.1 TLS already active".into(),
            "STARTTLS" => {
                send(&mut io, "220 2.0.0 Ready to start TLS").await?;
                let tls = within(acceptor.accept(io.into_inner())).await?;
                io = BufReader::new(Box::new(tls));
                // RFC 3207: the client starts over, with EHLO.
                s = Session {
                    tls: true,
                    ..Session::default()
                };
                continue;
            }
            "AUTH" => auth(&mut io, shared, &mut s, &arg).await?,
            "MAIL" => {
                if !s.greeted {
                    "503 5.5.1 EHLO first".into()
                } else if config.credentials.is_some() && s.user.is_none() {
                    "530 5.7.0 Authentication required".into()
                } else if s.from.is_some() {
                    "503 5.5.1 MAIL already given".into()
                } else {
                    match path(&arg, "FROM:") {
                        None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                        Some(from) => {
                            let reply = shared
                                .scripted(Stage::Mail)
                                .unwrap_or_else(|| "250 2.1.0 Ok".into());
                            if reply.starts_with('2') {
                                s.from = Some(from);
                                s.to.clear();
                            }
                            reply
                        }
                    }
                }
            }
            "RCPT" => {
                if s.from.is_none() {
                    "503 5.5.1 MAIL first".into()
                } else {
                    match path(&arg, "TO:") {
                        None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                        Some(to) => {
                            let reply = shared
                                .scripted(Stage::Rcpt)
                                .unwrap_or_else(|| "250 2.1.5 Ok".into());
                            if reply.starts_with('2') {
                                s.to.push(to);
                            }
                            reply
                        }
                    }
                }
            }
            "DATA" => {
                if s.to.is_empty() {
                    "503 5.5.1 RCPT first".into()
                } else {
                    send(&mut io, "354 End data with <CR><LF>.<CR><LF>").await?;
                    let data = read_data(&mut io).await?;
                    let reply = match data {
                        None => "552 5.3.4 Message too big".into(),
                        Some(data) => {
                            let reply = shared
                                .scripted(Stage::Data)
                                .unwrap_or_else(|| "250 2.0.0 Ok: queued".into());
                            if reply.starts_with('2') {
                                let mail = Mail {
                                    from: s.from.clone().unwrap_or_default(),
                                    to: s.to.clone(),
                                    data,
                                    authenticated_as: s.user.clone(),
                                    tls: s.tls,
                                };
                                let mut inner = shared.lock();
                                inner.mails.push(mail);
                                shared.count.send_replace(inner.mails.len());
                            }
                            reply
                        }
                    };
                    s.from = None;
                    s.to.clear();
                    reply
                }
            }
            "RSET" => {
                s.from = None;
                s.to.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "QUIT" => {
                send(&mut io, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => "500 5.5.2 Command not recognized".into(),
        };
        send(&mut io, &reply).await?;
        if reply.starts_with("421") {
            return Ok(());
        }
    }
}

/// `AUTH PLAIN [initial]` or `AUTH LOGIN [user]`: reads the credentials and returns the reply.
async fn auth(
    io: &mut Conn,
    shared: &Shared,
    s: &mut Session,
    arg: &str,
) -> std::io::Result<String> {
    let Some((user, password)) = &shared.config.credentials else {
        return Ok("502 5.5.1 AUTH not available".into());
    };
    if !s.greeted {
        return Ok("503 5.5.1 EHLO first".into());
    }
    if s.user.is_some() {
        return Ok("503 5.5.1 Already authenticated".into());
    }
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim().to_string())),
        None => (arg.to_ascii_uppercase(), None),
    };
    let given = match mechanism.as_str() {
        "PLAIN" => {
            let answer = match initial {
                Some(a) => a,
                None => challenge(io, "334 ").await?,
            };
            decode(&answer).and_then(|plain| {
                // authzid NUL authcid NUL passwd (RFC 4616).
                let mut parts = plain.splitn(3, '\0');
                let (_authzid, authcid, passwd) = (parts.next()?, parts.next()?, parts.next()?);
                Some((authcid.to_string(), passwd.to_string()))
            })
        }
        "LOGIN" => {
            let name = match initial {
                Some(a) => a,
                // "Username:" and "Password:" in base64.
                None => challenge(io, "334 VXNlcm5hbWU6").await?,
            };
            let secret = challenge(io, "334 UGFzc3dvcmQ6").await?;
            decode(&name).zip(decode(&secret))
        }
        _ => return Ok("504 5.5.4 Unrecognized authentication type".into()),
    };
    let Some((given_user, given_password)) = given else {
        return Ok("501 5.5.2 Cannot decode the credentials".into());
    };
    let matches = given_user == *user && given_password == *password;
    let reply = shared.scripted(Stage::Auth).unwrap_or_else(|| {
        if matches {
            "235 2.7.0 Authentication successful".into()
        } else {
            "535 5.7.8 Authentication credentials invalid".into()
        }
    });
    if reply.starts_with('2') {
        s.user = Some(given_user);
    }
    Ok(reply)
}

/// Writes a challenge and reads the client's answer (`*` cancels, read as no answer).
async fn challenge(io: &mut Conn, line: &str) -> std::io::Result<String> {
    send(io, line).await?;
    Ok(read_line(io).await?.unwrap_or_default())
}

/// Base64 text decoded to UTF-8, if it is.
fn decode(text: &str) -> Option<String> {
    String::from_utf8(BASE64.decode(text.trim()).ok()?).ok()
}

/// The address of `FROM:<a@b> PARAMS` (after `prefix`), without the brackets.
fn path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// Writes one reply (possibly several lines joined by CRLF) and flushes it.
async fn send(io: &mut Conn, reply: &str) -> std::io::Result<()> {
    io.write_all(reply.as_bytes()).await?;
    io.write_all(b"\r\n").await?;
    io.flush().await
}

/// One line without its line end; `None` when the client has left.
async fn read_line(io: &mut Conn) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = within((&mut *io).take(MAX_LINE).read_until(b'\n', &mut line)).await?;
    if n == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&line);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// The message after `DATA`, up to the lone `.` line, dot-unstuffed (RFC 5321 4.5.2);
/// `None` when it is longer than [`MAX_DATA`] (it is read to its end all the same).
async fn read_data(io: &mut Conn) -> std::io::Result<Option<String>> {
    let mut data = Vec::new();
    let mut too_big = false;
    loop {
        let mut line = Vec::new();
        let n = within(io.read_until(b'\n', &mut line)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + line.len() > MAX_DATA {
            too_big = true;
        } else {
            data.extend_from_slice(line);
        }
    }
    Ok((!too_big).then(|| String::from_utf8_lossy(&data).into_owned()))
}

/// `fut`, given up after [`IDLE`] as a timed-out I/O error.
async fn within<T>(
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(IDLE, fut)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_with_their_parameters_left_out() {
        assert_eq!(
            path("FROM:<a@example.com> BODY=8BITMIME", "FROM:").as_deref(),
            Some("a@example.com")
        );
        assert_eq!(path("to: <b@x>", "TO:").as_deref(), Some("b@x"));
        assert_eq!(path("FROM:a@x", "FROM:"), None);
        assert_eq!(path("TO:<b@x>", "FROM:"), None);
    }

    async fn client(rx: &SmtpReceiver) -> BufReader<TcpStream> {
        BufReader::new(TcpStream::connect(rx.addr()).await.unwrap())
    }

    async fn say(io: &mut BufReader<TcpStream>, line: &str) -> String {
        io.get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        last_reply(io).await
    }

    /// The last line of a (possibly multi-line) reply.
    async fn last_reply(io: &mut BufReader<TcpStream>) -> String {
        loop {
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }

    #[tokio::test]
    async fn a_plain_session_is_recorded_dot_unstuffed_and_scripts_are_used_once() {
        let rx = SmtpReceiver::start(Security::Plain).await;
        let mut io = client(&rx).await;
        assert!(last_reply(&mut io).await.starts_with("220 "));
        assert_eq!(
            say(&mut io, "MAIL FROM:<a@x>").await,
            "503 5.5.1 EHLO first"
        );
        assert_eq!(say(&mut io, "EHLO me").await, "250 SIZE 10485760");
        rx.reply(Stage::Rcpt, "550 5.1.1 no such user");
        assert_eq!(say(&mut io, "MAIL FROM:<a@x>").await, "250 2.1.0 Ok");
        assert_eq!(
            say(&mut io, "RCPT TO:<nobody@x>").await,
            "550 5.1.1 no such user"
        );
        assert_eq!(say(&mut io, "RCPT TO:<b@x>").await, "250 2.1.5 Ok");
        assert!(say(&mut io, "DATA").await.starts_with("354 "));
        assert_eq!(
            say(&mut io, "Subject: hi\r\n\r\n..leading dot\r\nend\r\n.").await,
            "250 2.0.0 Ok: queued"
        );
        assert_eq!(say(&mut io, "NOOP").await, "250 2.0.0 Ok");
        assert_eq!(say(&mut io, "QUIT").await, "221 2.0.0 Bye");
        let mails = rx.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(
            mails,
            vec![Mail {
                from: "a@x".into(),
                to: vec!["b@x".into()],
                data: "Subject: hi\r\n\r\n.leading dot\r\nend\r\n".into(),
                authenticated_as: None,
                tls: false,
            }]
        );
        assert_eq!(
            rx.commands(),
            ["MAIL", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "NOOP", "QUIT"]
        );
    }

    #[tokio::test]
    async fn auth_login_checks_the_credentials_and_421_closes() {
        let rx = SmtpReceiver::start_with_credentials(Security::Plain, "user", "pw").await;
        let mut io = client(&rx).await;
        last_reply(&mut io).await;
        assert_eq!(say(&mut io, "EHLO me").await, "250 SIZE 10485760");
        assert_eq!(
            say(&mut io, "MAIL FROM:<a@x>").await,
            "530 5.7.0 Authentication required"
        );
        assert_eq!(say(&mut io, "AUTH LOGIN").await, "334 VXNlcm5hbWU6");
        assert_eq!(
            say(&mut io, &BASE64.encode("user")).await,
            "334 UGFzc3dvcmQ6"
        );
        assert_eq!(
            say(&mut io, &BASE64.encode("wrong")).await,
            "535 5.7.8 Authentication credentials invalid"
        );
        let plain = BASE64.encode("\0user\0pw");
        assert_eq!(
            say(&mut io, &format!("AUTH PLAIN {plain}")).await,
            "235 2.7.0 Authentication successful"
        );
        rx.reply(Stage::Mail, "421 4.3.2 shutting down");
        assert_eq!(
            say(&mut io, "MAIL FROM:<a@x>").await,
            "421 4.3.2 shutting down"
        );
        let mut rest = String::new();
        assert_eq!(
            io.read_line(&mut rest).await.unwrap(),
            0,
            "closed after 421"
        );
    }
}
