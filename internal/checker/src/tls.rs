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

use std::io;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use upwatch_core::check::{CheckError, CheckRequest, ErrorKind};
use upwatch_core::observation::Observation;

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
        let (stream, peer, connect_took) =
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

        let config = if request.tls_skip_verify {
            &self.accepting_any
        } else {
            &self.verifying
        };
        let connector = TlsConnector::from(Arc::clone(config));
        let started = Instant::now();
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
}
