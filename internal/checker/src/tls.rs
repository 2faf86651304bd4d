//! `tls://host:port` checks: a TLS handshake with SNI and certificate verification.
//!
//! The connection is made as a TCP check makes it ([`crate::tcp::connect`]), then a rustls
//! handshake runs on it with the host as the server name (an IP address is sent as such, and
//! is what the certificate must name). Verification uses the public roots of `webpki-roots`
//! plus the configured extra roots; a monitor with `tls_skip_verify` accepts any certificate
//! but the handshake signatures are still checked. After a handshake the client sends a
//! `close_notify` and closes; no data is exchanged.
//!
//! A failed handshake is [`ErrorKind::Tls`], with a message that tells an expired
//! certificate, an unknown issuer and a name mismatch apart. A server that closes or resets
//! the connection during the handshake is `Tls` too: the TCP connection was made, so it is
//! the TLS service that failed.
//!
//! # STARTTLS
//!
//! A monitor with `starttls` first speaks a plain-text upgrade on the TCP connection, then
//! runs the same handshake (SNI, verification, certificate facts) on it:
//!
//! - `smtp` (RFC 3207): the `220` greeting (one line or several), `EHLO upwatch`, a `250`
//!   reply that lists `STARTTLS` (in any case), `STARTTLS`, a `220`;
//! - `imap` (RFC 3501, RFC 9051): the `* OK` greeting, `a1 STARTTLS`, untagged lines if any,
//!   then `a1 OK`;
//! - `postgres`: the 8-byte `SSLRequest`, answered by the single byte `S`.
//!
//! The preamble runs within the check's deadline and counts in its latency (connect,
//! preamble and handshake). A server that refuses the upgrade or answers something else is
//! [`ErrorKind::Tls`] (the port answered; it is its TLS service that is missing or broken),
//! with a message quoting the first 100 bytes of what it said. A server that closes or resets
//! the connection during the preamble is [`ErrorKind::Connect`]. What a server may send is
//! bounded: lines of at most [`MAX_LINE`] bytes, at most [`MAX_LINES`] of them. Bytes the
//! server sends after agreeing to the upgrade and before the handshake are refused rather
//! than dropped or fed to rustls: they can only be injected plain text (libpq refuses them
//! too since CVE-2021-23222).
//!
//! The preamble is written here rather than taken from a crate: no maintained crate does
//! "speak a STARTTLS preamble on a tokio stream, then hand it to rustls" for these three
//! protocols (the SMTP and IMAP client crates drive their own whole sessions and TLS, and
//! the PostgreSQL drivers do their own handshake), and the three exchanges are a few lines
//! each.

use std::io;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use upwatch_core::check::{truncate, CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::{Observation, Starttls};

use crate::classify::timeout_error;
use crate::{cert, tcp, Probe};

/// The TLS prober: client configurations that verify certificates or do not.
#[derive(Debug)]
pub(crate) struct TlsProber {
    /// Verifies against the public roots and the extra roots.
    verifying: Arc<ClientConfig>,
    /// Accepts any certificate, for monitors with `tls_skip_verify`.
    accepting_any: Arc<ClientConfig>,
}

impl TlsProber {
    /// Builds both configurations with the ring provider; fails when an extra root is not a
    /// usable CA certificate.
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<TlsProber, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for (i, root) in extra_roots.iter().enumerate() {
            roots
                .add(root.clone())
                .map_err(|e| format!("extra root certificate {} is not usable: {e}", i + 1))?;
        }
        let verifying = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let accepting_any = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up tls: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(DangerousAcceptAnyCertificate::new(
                &provider,
            )))
            .with_no_client_auth();

        Ok(TlsProber {
            verifying: Arc::new(verifying),
            accepting_any: Arc::new(accepting_any),
        })
    }

    /// Connects and completes a handshake; the latency is connect plus handshake.
    pub async fn probe(&self, request: &CheckRequest, deadline: Instant) -> Probe {
        let (host, port) = match tcp::endpoint(&request.url) {
            Ok(endpoint) => endpoint,
            Err(error) => return Probe::failed(error),
        };
        let server_name = match ServerName::try_from(host.clone()) {
            Ok(name) => name,
            Err(_) => {
                return Probe::failed(CheckError::new(
                    ErrorKind::Other,
                    format!("{host} is not a valid tls server name"),
                ))
            }
        };
        let (mut stream, peer, connect_took) =
            match tcp::connect(&host, port, deadline, request.timeout_ms).await {
                Ok(connected) => connected,
                Err(error) => return Probe::failed(error),
            };

        // Connected: whatever happens next, the address is known.
        let mut observation = Observation {
            connected: true,
            ..Observation::default()
        };
        observation.details.ip = Some(peer.ip());

        let started = Instant::now();
        if let Some(protocol) = request.starttls {
            let target = tcp::host_port(&host, port);
            let upgrade =
                tokio::time::timeout_at(deadline, starttls(&mut stream, protocol, &target));
            let upgraded = match upgrade.await {
                Err(_) => Err(timeout_error(request.timeout_ms)),
                Ok(upgraded) => upgraded,
            };
            if let Err(error) = upgraded {
                return Probe {
                    observation,
                    outcome: Err(error),
                };
            }
        }

        let config = if request.tls_skip_verify {
            &self.accepting_any
        } else {
            &self.verifying
        };
        let connector = TlsConnector::from(Arc::clone(config));
        let handshake = tokio::time::timeout_at(deadline, connector.connect(server_name, stream));
        let mut tls = match handshake.await {
            Err(_) => {
                return Probe {
                    observation,
                    outcome: Err(timeout_error(request.timeout_ms)),
                }
            }
            Ok(Err(error)) => {
                return Probe {
                    observation,
                    outcome: Err(handshake_error(
                        &error,
                        &host,
                        &tcp::host_port(&host, port),
                        request.timeout_ms,
                    )),
                }
            }
            Ok(Ok(tls)) => tls,
        };
        // With STARTTLS, the preamble counts too.
        let handshake_took = started.elapsed();

        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        observation.details.certificate = match leaf.map(|der| cert::facts(der)) {
            Some(Ok(facts)) => Some(facts),
            Some(Err(error)) => {
                tracing::debug!(%error, "the peer certificate could not be read");
                None
            }
            None => None,
        };
        observation.response_time_ms = tcp::latency_ms(connect_took + handshake_took);

        // A polite close_notify; the check has its answer whether or not it gets through.
        let _ = tokio::time::timeout_at(deadline, tls.shutdown()).await;

        Probe {
            observation,
            outcome: Ok(()),
        }
    }
}

/// The error for a failed handshake with `host` at `target` (`host:port`).
fn handshake_error(error: &io::Error, host: &str, target: &str, timeout_ms: u64) -> CheckError {
    if let Some(tls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return CheckError::new(ErrorKind::Tls, rustls_message(tls_error, host));
    }
    use io::ErrorKind as K;
    let message = match error.kind() {
        K::TimedOut => return timeout_error(timeout_ms),
        K::UnexpectedEof => format!("{target} closed the connection during the tls handshake"),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            format!("connection reset by {target} during the tls handshake")
        }
        _ => format!("tls handshake failed: {error}"),
    };
    CheckError::new(ErrorKind::Tls, message)
}

/// A readable sentence for a rustls error met while connecting to `host`.
fn rustls_message(error: &rustls::Error, host: &str) -> String {
    let rustls::Error::InvalidCertificate(certificate_error) = error else {
        return format!("tls handshake failed: {error}");
    };
    match certificate_error {
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired at {}", date(*not_after))
        }
        CertificateError::Expired => "certificate has expired".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate is not valid before {}", date(*not_before))
        }
        CertificateError::NotValidYet => "certificate is not valid yet".to_string(),
        CertificateError::UnknownIssuer => {
            "certificate is not signed by a trusted authority (unknown issuer)".to_string()
        }
        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
            // The names are public (they are in the certificate); a few are enough.
            const SHOWN: usize = 5;
            let mut names = presented
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if presented.len() > SHOWN {
                names.push_str(", ...");
            }
            format!("certificate is not valid for {host} (it names {names})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("certificate is not valid for {host}")
        }
        _ => format!("tls handshake failed: {error}"),
    }
}

/// A certificate time as RFC 3339, to the second.
fn date(time: UnixTime) -> String {
    i64::try_from(time.as_secs())
        .ok()
        .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{} seconds after 1970", time.as_secs()))
}

// STARTTLS

/// The longest line a server may send during a STARTTLS preamble, line ending excluded.
const MAX_LINE: usize = 4096;
/// The most lines a server may send during a STARTTLS preamble.
const MAX_LINES: usize = 100;
/// How many bytes of what a server said a message quotes.
const QUOTED_BYTES: usize = 100;
/// The IMAP tag of the `STARTTLS` command.
const IMAP_TAG: &str = "a1";
/// PostgreSQL's `SSLRequest`: the length (8), then the code 80877103 (1234 << 16 | 5679).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Speaks `protocol`'s plain-text upgrade on `stream` (connected to `target`, `host:port`),
/// leaving it where the server expects the TLS handshake. The caller bounds it in time.
async fn starttls<S>(stream: &mut S, protocol: Starttls, target: &str) -> Result<(), CheckError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut preamble = Preamble {
        stream,
        buffer: Vec::new(),
        lines: 0,
        server: match protocol {
            Starttls::Smtp => "the smtp server",
            Starttls::Imap => "the imap server",
            Starttls::Postgres => "the postgresql server",
        },
        target,
    };
    match protocol {
        Starttls::Smtp => smtp(&mut preamble).await?,
        Starttls::Imap => imap(&mut preamble).await?,
        Starttls::Postgres => postgres(&mut preamble).await?,
    }
    preamble.finish()
}

/// SMTP (RFC 3207): greeting, `EHLO`, `STARTTLS`.
async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    p: &mut Preamble<'_, S>,
) -> Result<(), CheckError> {
    let (code, greeting) = p.smtp_reply("greeting").await?;
    if code != 220 {
        return Err(p.failure(
            format!("unexpected greeting from {}", p.server),
            &greeting[0],
        ));
    }

    p.send(b"EHLO upwatch\r\n").await?;
    let (code, lines) = p.smtp_reply("answer to EHLO").await?;
    if code != 250 {
        return Err(p.failure(format!("{} refused EHLO", p.server), &lines[0]));
    }
    // The first line greets; each of the others names an extension, keyword first.
    let offered = lines.iter().skip(1).any(|line| {
        line.get(4..)
            .and_then(|text| text.split_ascii_whitespace().next())
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(CheckError::new(
            ErrorKind::Tls,
            format!("{} does not offer STARTTLS", p.server),
        ));
    }

    p.send(b"STARTTLS\r\n").await?;
    let (code, lines) = p.smtp_reply("answer to STARTTLS").await?;
    if code != 220 {
        return Err(p.failure(format!("{} refused STARTTLS", p.server), &lines[0]));
    }
    Ok(())
}

/// IMAP (RFC 3501 section 6.2.1, RFC 9051): greeting, `a1 STARTTLS`, the tagged answer.
async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    p: &mut Preamble<'_, S>,
) -> Result<(), CheckError> {
    let greeting = p.line().await?;
    let mut words = greeting.split(' ');
    if words.next() != Some("*") || !words.next().is_some_and(|w| w.eq_ignore_ascii_case("OK")) {
        return Err(p.failure(format!("unexpected greeting from {}", p.server), &greeting));
    }

    p.send(format!("{IMAP_TAG} STARTTLS\r\n").as_bytes())
        .await?;
    loop {
        let line = p.line().await?;
        let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let status = rest.split(' ').next().unwrap_or("");
        if tag == "*" {
            if status.eq_ignore_ascii_case("BYE") {
                return Err(p.failure(format!("{} refused STARTTLS", p.server), &line));
            }
            // Untagged data (a capability list, an alert) may come before the answer.
            continue;
        }
        if !tag.eq_ignore_ascii_case(IMAP_TAG) {
            return Err(p.failure(
                format!("unexpected answer to STARTTLS from {}", p.server),
                &line,
            ));
        }
        return if status.eq_ignore_ascii_case("OK") {
            Ok(())
        } else if status.eq_ignore_ascii_case("NO") || status.eq_ignore_ascii_case("BAD") {
            Err(p.failure(format!("{} refused STARTTLS", p.server), rest))
        } else {
            Err(p.failure(
                format!("unexpected answer to STARTTLS from {}", p.server),
                &line,
            ))
        };
    }
}

/// PostgreSQL (protocol 3, "SSL session encryption"): an `SSLRequest`, answered `S` or `N`.
async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
    p: &mut Preamble<'_, S>,
) -> Result<(), CheckError> {
    p.send(&SSL_REQUEST).await?;
    match p.byte().await? {
        b'S' => Ok(()),
        b'N' => Err(CheckError::new(
            ErrorKind::Tls,
            format!("{} does not accept tls (answered N)", p.server),
        )),
        // `E` is an error message: a server too old for SSLRequest, or not PostgreSQL.
        other => Err(CheckError::new(
            ErrorKind::Tls,
            format!(
                "unexpected answer to the ssl request from {} (answered {})",
                p.server,
                shown_byte(other)
            ),
        )),
    }
}

/// A connection during its plain-text preamble, read through a bounded buffer.
struct Preamble<'a, S> {
    stream: &'a mut S,
    /// Bytes read and not yet taken; never more than a line and a read.
    buffer: Vec<u8>,
    /// Lines taken so far.
    lines: usize,
    /// "the smtp server", for messages.
    server: &'static str,
    /// `host:port`, for messages.
    target: &'a str,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Preamble<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), CheckError> {
        let sent = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        sent.await.map_err(|error| self.io_error(&error))
    }

    /// Reads once more from the stream into the buffer; the end of the stream is an error.
    async fn fill(&mut self) -> Result<(), CheckError> {
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) => Err(self.io_error(&io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(error) => Err(self.io_error(&error)),
        }
    }

    /// The next line, without its line ending (CRLF, or a bare LF); bytes that are not UTF-8
    /// are replaced.
    async fn line(&mut self) -> Result<String, CheckError> {
        loop {
            let end = self.buffer.iter().position(|&b| b == b'\n');
            // Room for the CR of a CRLF.
            if end.unwrap_or(self.buffer.len()) > MAX_LINE + 1 {
                return Err(CheckError::new(
                    ErrorKind::Tls,
                    format!("{} sent a line longer than {MAX_LINE} bytes", self.server),
                ));
            }
            let Some(end) = end else {
                self.fill().await?;
                continue;
            };
            if self.lines == MAX_LINES {
                return Err(CheckError::new(
                    ErrorKind::Tls,
                    format!("{} sent more than {MAX_LINES} lines", self.server),
                ));
            }
            self.lines += 1;
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }

    /// The next byte.
    async fn byte(&mut self) -> Result<u8, CheckError> {
        if self.buffer.is_empty() {
            self.fill().await?;
        }
        Ok(self.buffer.remove(0))
    }

    /// One SMTP reply (RFC 5321 section 4.2): `NNN-text` lines, then `NNN text` or `NNN`.
    /// Returns the code of the last line (which RFC 5321 says to go by) and the lines, at
    /// least one; `what` names the reply in the message of a malformed line.
    async fn smtp_reply(&mut self, what: &str) -> Result<(u16, Vec<String>), CheckError> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            let Some((code, last)) = smtp_line(&line) else {
                return Err(self.failure(format!("unexpected {what} from {}", self.server), &line));
            };
            lines.push(line);
            if last {
                return Ok((code, lines));
            }
        }
    }

    /// Ends the preamble: the server, having agreed to the upgrade, must wait for the
    /// client's handshake, so anything already received is refused.
    fn finish(self) -> Result<(), CheckError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(CheckError::new(
                ErrorKind::Tls,
                format!("{} sent unexpected data after agreeing to tls", self.server),
            ))
        }
    }

    /// A refusal or an unexpected answer: `what`, then what the server said.
    fn failure(&self, what: String, said: &str) -> CheckError {
        CheckError::new(ErrorKind::Tls, format!("{what}: {}", quote(said)))
    }

    /// A failure to read or write: the connection itself failed.
    fn io_error(&self, error: &io::Error) -> CheckError {
        use io::ErrorKind as K;
        let target = self.target;
        let message = match error.kind() {
            K::UnexpectedEof => format!("{target} closed the connection before STARTTLS"),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                format!("connection reset by {target} before STARTTLS")
            }
            _ => format!("connection to {target} failed before STARTTLS: {error}"),
        };
        CheckError::new(ErrorKind::Connect, message)
    }
}

/// The code of an SMTP reply line and whether it is the reply's last line.
fn smtp_line(line: &str) -> Option<(u16, bool)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let last = match line.as_bytes().get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    Some((code.parse().ok()?, last))
}

/// What a server said, for a message: control characters blanked, cut to [`QUOTED_BYTES`].
fn quote(said: &str) -> String {
    let clean: String = said
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_empty() {
        return "(an empty line)".to_string();
    }
    truncate(clean, QUOTED_BYTES)
}

/// A byte as a message shows it: itself when it is a visible ASCII character, else in hex.
fn shown_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        char::from(byte).to_string()
    } else {
        format!("0x{byte:02x}")
    }
}

/// DANGEROUS: accepts every server certificate, whoever issued it and whatever it names.
///
/// Only for monitors that set `tls_skip_verify`, which then learn whether a TLS service
/// answers and what certificate it shows, not whether it can be trusted. The handshake
/// signatures are still verified with the provider's algorithms, so the server must hold
/// the key of the certificate it presents.
#[derive(Debug)]
struct DangerousAcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl DangerousAcceptAnyCertificate {
    fn new(provider: &CryptoProvider) -> Self {
        DangerousAcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for DangerousAcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(error: CertificateError) -> rustls::Error {
        rustls::Error::InvalidCertificate(error)
    }

    #[test]
    fn expiry_names_the_date_when_rustls_gives_it() {
        let error = invalid(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_600_000_000)),
        });
        assert_eq!(
            rustls_message(&error, "example.com"),
            "certificate expired at 2020-09-13T12:26:40Z"
        );
        assert_eq!(
            rustls_message(&invalid(CertificateError::Expired), "example.com"),
            "certificate has expired"
        );
    }

    #[test]
    fn issuer_and_name_failures_say_so() {
        assert_eq!(
            rustls_message(&invalid(CertificateError::UnknownIssuer), "example.com"),
            "certificate is not signed by a trusted authority (unknown issuer)"
        );
        assert_eq!(
            rustls_message(&invalid(CertificateError::NotValidForName), "example.com"),
            "certificate is not valid for example.com"
        );
        let error = invalid(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("example.com").unwrap(),
            presented: vec!["other.test".to_string()],
        });
        assert_eq!(
            rustls_message(&error, "example.com"),
            "certificate is not valid for example.com (it names other.test)"
        );
    }

    #[test]
    fn other_failures_quote_rustls() {
        let error = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(
            rustls_message(&error, "example.com"),
            "tls handshake failed: received corrupt message of type InvalidContentType"
        );
    }

    #[test]
    fn io_failures_during_the_handshake_are_tls() {
        let eof = handshake_error(
            &io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof"),
            "127.0.0.1",
            "127.0.0.1:9",
            1000,
        );
        assert_eq!(eof.kind, ErrorKind::Tls);
        assert_eq!(
            eof.message,
            "127.0.0.1:9 closed the connection during the tls handshake"
        );

        let wrapped = handshake_error(
            &io::Error::new(
                io::ErrorKind::InvalidData,
                invalid(CertificateError::UnknownIssuer),
            ),
            "127.0.0.1",
            "127.0.0.1:9",
            1000,
        );
        assert_eq!(wrapped.kind, ErrorKind::Tls);
        assert!(
            wrapped.message.contains("unknown issuer"),
            "{}",
            wrapped.message
        );
    }

    #[test]
    fn both_configurations_build_and_bad_extra_roots_are_refused() {
        assert!(TlsProber::new(&[]).is_ok());
        let garbage = CertificateDer::from(vec![1, 2, 3]);
        let error = TlsProber::new(&[garbage]).unwrap_err();
        assert!(
            error.starts_with("extra root certificate 1 is not usable"),
            "{error}"
        );
    }

    // STARTTLS, against a scripted server on an in-memory pipe.

    /// One step of a scripted server.
    enum Step {
        /// Writes these bytes.
        Say(Vec<u8>),
        /// Reads exactly these bytes from the client.
        Hear(Vec<u8>),
    }

    fn say(bytes: impl Into<Vec<u8>>) -> Step {
        Step::Say(bytes.into())
    }

    fn hear(bytes: impl Into<Vec<u8>>) -> Step {
        Step::Hear(bytes.into())
    }

    /// Runs the client preamble against a server that plays `script` and then hangs up.
    async fn converse(protocol: Starttls, script: Vec<Step>) -> Result<(), CheckError> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            for step in script {
                match step {
                    Step::Say(bytes) => server.write_all(&bytes).await.expect("the server writes"),
                    Step::Hear(expected) => {
                        let mut heard = vec![0; expected.len()];
                        server
                            .read_exact(&mut heard)
                            .await
                            .expect("the client writes");
                        assert_eq!(
                            String::from_utf8_lossy(&heard),
                            String::from_utf8_lossy(&expected)
                        );
                    }
                }
            }
        });
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            starttls(&mut client, protocol, "127.0.0.1:25"),
        )
        .await
        .expect("the preamble ends");
        drop(client);
        server.await.expect("the server plays its script");
        result
    }

    fn tls_failure(result: Result<(), CheckError>) -> String {
        let error = result.expect_err("the preamble fails");
        assert_eq!(error.kind, ErrorKind::Tls, "{}", error.message);
        error.message
    }

    #[tokio::test]
    async fn smtp_reads_multi_line_replies_and_any_case_of_starttls() {
        let script = vec![
            say(b"220-mail.example.com ESMTP\r\n220-more words\r\n220 ready\r\n"),
            hear(b"EHLO upwatch\r\n"),
            say(b"250-mail.example.com\r\n250-PIPELINING\r\n250-StartTLS\r\n250 8BITMIME\r\n"),
            hear(b"STARTTLS\r\n"),
            say(b"220 2.0.0 go ahead\r\n"),
        ];
        converse(Starttls::Smtp, script).await.unwrap();

        // Bare line feeds are taken too, and the last line may be the extension.
        let script = vec![
            say(b"220 hi\n"),
            hear(b"EHLO upwatch\r\n"),
            say(b"250-hi\n250 STARTTLS\n"),
            hear(b"STARTTLS\r\n"),
            say(b"220 go\n"),
        ];
        converse(Starttls::Smtp, script).await.unwrap();
    }

    #[tokio::test]
    async fn smtp_refusals_quote_the_server() {
        let script = vec![
            say(b"220 hi\r\n"),
            hear(b"EHLO upwatch\r\n"),
            // The greeting line naming STARTTLS is not an extension.
            say(b"250-STARTTLS\r\n250 SIZE 1000\r\n"),
        ];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "the smtp server does not offer STARTTLS"
        );

        let script = vec![
            say(b"220 hi\r\n"),
            hear(b"EHLO upwatch\r\n"),
            say(b"250-hi\r\n250 STARTTLS\r\n"),
            hear(b"STARTTLS\r\n"),
            say(b"454 TLS not available\r\n"),
        ];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "the smtp server refused STARTTLS: 454 TLS not available"
        );

        let script = vec![say(b"554-no service\r\n554 go away\r\n")];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "unexpected greeting from the smtp server: 554-no service"
        );

        let script = vec![
            say(b"220 hi\r\n"),
            hear(b"EHLO upwatch\r\n"),
            say(b"502 5.5.2 what\r\n"),
        ];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "the smtp server refused EHLO: 502 5.5.2 what"
        );

        let script = vec![say(b"SSH-2.0-OpenSSH_9.6\r\n")];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "unexpected greeting from the smtp server: SSH-2.0-OpenSSH_9.6"
        );
    }

    #[tokio::test]
    async fn imap_skips_untagged_lines_until_its_tag() {
        let script = vec![
            say(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
            hear(b"a1 STARTTLS\r\n"),
            say(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n* OK [ALERT] hello\r\n"),
            say(b"a1 OK Begin TLS negotiation now\r\n"),
        ];
        converse(Starttls::Imap, script).await.unwrap();
    }

    #[tokio::test]
    async fn imap_refusals_and_odd_greetings_say_so() {
        for (answer, message) in [
            (
                &b"a1 NO STARTTLS not available\r\n"[..],
                "the imap server refused STARTTLS: NO STARTTLS not available",
            ),
            (
                b"a1 BAD unknown command\r\n",
                "the imap server refused STARTTLS: BAD unknown command",
            ),
            (
                b"* BYE shutting down\r\n",
                "the imap server refused STARTTLS: * BYE shutting down",
            ),
            (
                b"+ go on\r\n",
                "unexpected answer to STARTTLS from the imap server: + go on",
            ),
        ] {
            let script = vec![say(b"* OK hi\r\n"), hear(b"a1 STARTTLS\r\n"), say(answer)];
            assert_eq!(tls_failure(converse(Starttls::Imap, script).await), message);
        }

        let script = vec![say(b"* PREAUTH already in\r\n")];
        assert_eq!(
            tls_failure(converse(Starttls::Imap, script).await),
            "unexpected greeting from the imap server: * PREAUTH already in"
        );
    }

    #[tokio::test]
    async fn postgres_sends_the_ssl_request_and_reads_one_byte() {
        let script = vec![hear(SSL_REQUEST), say(b"S")];
        converse(Starttls::Postgres, script).await.unwrap();

        let script = vec![hear(SSL_REQUEST), say(b"N")];
        assert_eq!(
            tls_failure(converse(Starttls::Postgres, script).await),
            "the postgresql server does not accept tls (answered N)"
        );

        let script = vec![hear(SSL_REQUEST), say(b"\0")];
        assert_eq!(
            tls_failure(converse(Starttls::Postgres, script).await),
            "unexpected answer to the ssl request from the postgresql server (answered 0x00)"
        );
    }

    #[test]
    fn the_ssl_request_carries_its_code() {
        assert_eq!(&SSL_REQUEST[..4], &8i32.to_be_bytes());
        assert_eq!(&SSL_REQUEST[4..], &80_877_103i32.to_be_bytes());
    }

    #[tokio::test]
    async fn data_sent_before_the_handshake_is_refused() {
        let script = vec![hear(SSL_REQUEST), say(b"Sinjected")];
        assert_eq!(
            tls_failure(converse(Starttls::Postgres, script).await),
            "the postgresql server sent unexpected data after agreeing to tls"
        );

        let script = vec![
            say(b"220 hi\r\n"),
            hear(b"EHLO upwatch\r\n"),
            say(b"250-hi\r\n250 STARTTLS\r\n"),
            hear(b"STARTTLS\r\n"),
            say(b"220 go\r\n250 injected\r\n"),
        ];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "the smtp server sent unexpected data after agreeing to tls"
        );
    }

    #[tokio::test]
    async fn a_hang_up_during_the_preamble_is_a_connect_error() {
        for (protocol, script) in [
            (Starttls::Smtp, vec![say(b"220-hi\r\n")]),
            (Starttls::Imap, vec![]),
            (Starttls::Postgres, vec![hear(SSL_REQUEST)]),
        ] {
            let error = converse(protocol, script).await.unwrap_err();
            assert_eq!(error.kind, ErrorKind::Connect, "{protocol:?}");
            assert_eq!(
                error.message,
                "127.0.0.1:25 closed the connection before STARTTLS"
            );
        }
    }

    #[tokio::test]
    async fn what_a_server_may_send_is_bounded() {
        let long = vec![b'2'; MAX_LINE + 10];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, vec![say(long)]).await),
            "the smtp server sent a line longer than 4096 bytes"
        );

        // A line of exactly the limit is fine.
        let mut greeting = b"220 ".to_vec();
        greeting.resize(MAX_LINE, b'x');
        greeting.extend_from_slice(b"\r\n");
        let script = vec![say(greeting), hear(b"EHLO upwatch\r\n"), say(b"250 hi\r\n")];
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, script).await),
            "the smtp server does not offer STARTTLS"
        );

        let many = b"220-hi\r\n".repeat(MAX_LINES + 1);
        assert_eq!(
            tls_failure(converse(Starttls::Smtp, vec![say(many)]).await),
            "the smtp server sent more than 100 lines"
        );
    }

    #[test]
    fn quotes_are_short_and_printable() {
        assert_eq!(quote("  454 \u{7}TLS\tdown "), "454  TLS down");
        assert_eq!(quote(""), "(an empty line)");
        let long = quote(&"x".repeat(500));
        assert!(long.len() <= QUOTED_BYTES && long.ends_with('…'), "{long}");
        assert_eq!(shown_byte(b'E'), "E");
        assert_eq!(shown_byte(0x16), "0x16");
        assert_eq!(smtp_line("250"), Some((250, true)));
        assert_eq!(smtp_line("250-x"), Some((250, false)));
        assert_eq!(smtp_line("25x x"), None);
        assert_eq!(smtp_line("250x"), None);
    }
}
