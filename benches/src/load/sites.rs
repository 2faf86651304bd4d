//! What the monitors of a run check, by check type: the loopback server each type needs (the
//! bench's own HTTP target, or the testkit's TCP, TLS and DNS servers; ICMP needs none, the
//! kernel answers on 127.0.0.1), the monitors' settings, and the environment upwatch needs
//! for them (the test CA of the TLS server, as `UPWATCH_CHECK_CA_FILE`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use upwatch_testkit::dns::{DnsRecord, DnsRecords, DnsServer};
use upwatch_testkit::tls::{CertKind, TcpServer, TestCa, TlsServer};

use super::target::Target;

/// The name every DNS monitor asks its resolver for (type A).
pub const DNS_NAME: &str = "bench.upwatch.test";
/// The address [`DNS_NAME`] resolves to (documentation range; nothing connects to it).
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// A check type, as the monitor URL's scheme selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Http,
    Tcp,
    Tls,
    Icmp,
    Dns,
}

impl CheckKind {
    /// The scheme and report name: `http`, `tcp`, `tls`, `icmp`, `dns`.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Tls => "tls",
            CheckKind::Icmp => "icmp",
            CheckKind::Dns => "dns",
        }
    }

    /// What one check of this type does against its loopback server, for the report.
    pub fn what_a_check_does(self) -> &'static str {
        match self {
            CheckKind::Http => {
                "a fresh TCP connection, `GET`, a 200 answer, closed by the server (`connection: close`)"
            }
            CheckKind::Tcp => "a TCP connect, closed as soon as it is open; nothing is sent",
            CheckKind::Tls => {
                "a TCP connect, a rustls handshake verified against the test CA \
                 (`UPWATCH_CHECK_CA_FILE`), the certificate's facts read, `close_notify`"
            }
            CheckKind::Icmp => {
                "3 echo requests (the default `packets`) 200 ms apart, so about 0.4 s per check"
            }
            CheckKind::Dns => "one A query over a connected UDP socket and its answer",
        }
    }

    /// The server the monitors of this type check, for the report.
    pub fn target_description(self) -> &'static str {
        match self {
            CheckKind::Http => "the bench's HTTP target server",
            CheckKind::Tcp => "testkit `TcpServer::start_closing` (accepts and closes)",
            CheckKind::Tls => "testkit `TlsServer`, `CertKind::Valid` (ECDSA P-256, test CA)",
            CheckKind::Icmp => "127.0.0.1 (the kernel answers)",
            CheckKind::Dns => "testkit `DnsServer`, one A record",
        }
    }
}

/// The loopback server of one run.
enum Server {
    Http(Target),
    Tcp(TcpServer),
    Tls { server: TlsServer, ca_file: PathBuf },
    Icmp,
    Dns(DnsServer),
}

/// The sites the monitors of one run check.
pub struct Sites {
    kind: CheckKind,
    server: Server,
}

impl Sites {
    /// Starts the loopback server `kind` needs. `latency` and `failure_rate` shape the HTTP
    /// target's answers (the other servers answer as fast as they can, always well); `dir`
    /// receives the test CA's PEM file for TLS.
    pub async fn start(
        kind: CheckKind,
        latency: Duration,
        failure_rate: f64,
        dir: &Path,
    ) -> anyhow::Result<Sites> {
        let server = match kind {
            CheckKind::Http => {
                Server::Http(Target::start([127, 0, 0, 1].into(), latency, failure_rate).await?)
            }
            CheckKind::Tcp => Server::Tcp(TcpServer::start_closing().await),
            CheckKind::Tls => {
                let server = TlsServer::start(CertKind::Valid).await;
                let ca_file = dir.join("test-ca.pem");
                std::fs::write(&ca_file, pem_certificate(&TestCa::shared().der()))
                    .with_context(|| format!("cannot write {}", ca_file.display()))?;
                Server::Tls { server, ca_file }
            }
            CheckKind::Icmp => Server::Icmp,
            CheckKind::Dns => Server::Dns(
                DnsServer::start(DnsRecords::new().with(DNS_NAME, DnsRecord::A(DNS_ADDRESS))).await,
            ),
        };
        let sites = Sites { kind, server };
        tracing::info!(check_type = kind.name(), url = %sites.url(0), "sites ready");
        Ok(sites)
    }

    pub fn kind(&self) -> CheckKind {
        self.kind
    }

    /// The URL of monitor `i` when the sites are the HTTP target server.
    pub fn http_url(&self, i: usize) -> Option<String> {
        matches!(self.server, Server::Http(_)).then(|| self.url(i))
    }

    /// The URL of monitor `i`.
    fn url(&self, i: usize) -> String {
        match &self.server {
            Server::Http(target) => format!("http://{}/site/{i}", target.addr),
            Server::Tcp(server) => server.url(),
            Server::Tls { server, .. } => server.url(),
            Server::Icmp => "icmp://127.0.0.1".into(),
            Server::Dns(server) => server.url(),
        }
    }

    /// The settings of monitor `i`, as `POST /api/v1/sites/bulk` takes them.
    pub fn monitor(&self, i: usize, interval: u32) -> serde_json::Value {
        let mut monitor = serde_json::json!({
            "name": format!("bench {i}"),
            "url": self.url(i),
            "interval_seconds": interval,
            "timeout_seconds": interval.min(10),
        });
        if self.kind == CheckKind::Dns {
            monitor["dns"] = serde_json::json!({"query_name": DNS_NAME, "query_type": "A"});
        }
        monitor
    }

    /// What upwatch needs in its environment to check these sites.
    pub fn env(&self) -> Vec<(String, String)> {
        match &self.server {
            Server::Tls { ca_file, .. } => vec![(
                "UPWATCH_CHECK_CA_FILE".into(),
                ca_file.display().to_string(),
            )],
            _ => Vec::new(),
        }
    }

    /// Requests, connections, handshakes or queries the server has seen so far (`None` for
    /// ICMP, which the kernel answers).
    pub fn served(&self) -> Option<u64> {
        match &self.server {
            Server::Http(target) => Some(target.answered()),
            Server::Tcp(server) => Some(server.accepted()),
            Server::Tls { server, .. } => Some(server.handshakes()),
            Server::Icmp => None,
            Server::Dns(server) => Some(server.queries()),
        }
    }
}

/// A DER certificate as a PEM `CERTIFICATE` block.
pub fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Standard base64 with padding (RFC 4648).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = pem_certificate(&[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }

    #[tokio::test]
    async fn every_kind_starts_and_names_its_monitors() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [
            CheckKind::Http,
            CheckKind::Tcp,
            CheckKind::Tls,
            CheckKind::Icmp,
            CheckKind::Dns,
        ] {
            let sites = Sites::start(kind, Duration::ZERO, 0.0, dir.path())
                .await
                .unwrap();
            let monitor = sites.monitor(3, 10);
            let url = monitor["url"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("{}://127.0.0.1", kind.name())),
                "{url}"
            );
            assert_eq!(monitor["interval_seconds"], 10);
            assert_eq!(monitor.get("dns").is_some(), kind == CheckKind::Dns);
            assert_eq!(sites.env().is_empty(), kind != CheckKind::Tls);
            assert_eq!(sites.served().is_none(), kind == CheckKind::Icmp);
        }
        let pem = std::fs::read_to_string(dir.path().join("test-ca.pem")).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nMII"), "{pem}");
    }
}
