//! A loopback server for every check type at once, for the end-to-end tests that run one
//! monitor of each type: an HTTP site, a TCP listener, a TLS server whose certificate expires
//! in 5 days, and a DNS server that answers `A` for [`DNS_NAME`].

use std::path::{Path, PathBuf};

use crate::dns::{DnsRecord, DnsRecords, DnsServer};
use crate::target::TargetServer;
use crate::tls::{CertKind, TcpServer, TestCa, TlsServer};

/// The name the DNS server knows.
pub const DNS_NAME: &str = "app.upwatch.test";
/// The address it answers for [`DNS_NAME`].
pub const DNS_ADDRESS: &str = "127.0.0.7";
/// Days until the TLS server's certificate expires.
pub const CERT_DAYS: u32 = 5;

/// The servers, and the PEM file of the CA their certificates come from (for
/// `UPWATCH_CHECK_CA_FILE`). Each stops when dropped.
pub struct EveryType {
    pub http: TargetServer,
    pub tcp: TcpServer,
    pub tls: TlsServer,
    pub dns: DnsServer,
    pub ca_file: PathBuf,
}

impl EveryType {
    /// Starts the servers and writes the CA's PEM file into `dir`.
    pub async fn start(dir: &Path) -> EveryType {
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, TestCa::shared().pem()).expect("write the CA file");
        EveryType {
            http: TargetServer::start().await,
            tcp: TcpServer::start_closing().await,
            tls: TlsServer::start(CertKind::ExpiresIn(CERT_DAYS)).await,
            dns: DnsServer::start(DnsRecords::new().with(
                DNS_NAME,
                DnsRecord::A(DNS_ADDRESS.parse().expect("an address")),
            ))
            .await,
            ca_file,
        }
    }

    /// The CA file's path as text, for an environment variable.
    pub fn ca_path(&self) -> &str {
        self.ca_file.to_str().expect("a UTF-8 path")
    }
}
