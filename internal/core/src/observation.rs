//! Check types and what a probe observed.
//!
//! A monitor's URL scheme selects its [`CheckType`] (as in Gatus): `http`/`https`, `tcp`,
//! `tls`, `icmp` and `dns`; a push monitor has no URL to probe and is fed by the service
//! itself. Every prober fills one [`Observation`]; the conditions of [`crate::condition`] are
//! judged against it, and the facts worth keeping ([`CheckDetails`]) travel in the result.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of check a monitor performs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// An HTTP or HTTPS request judged by status, keyword and conditions.
    #[default]
    Http,
    /// A TCP connection that opens within the timeout.
    Tcp,
    /// A TLS handshake with certificate verification.
    Tls,
    /// ICMP echo requests.
    Icmp,
    /// A DNS query to a resolver.
    Dns,
    /// A heartbeat the monitored job sends itself.
    Push,
}

impl CheckType {
    /// Every type, in a stable order.
    pub const ALL: [CheckType; 6] = [
        CheckType::Http,
        CheckType::Tcp,
        CheckType::Tls,
        CheckType::Icmp,
        CheckType::Dns,
        CheckType::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Http => "http",
            CheckType::Tcp => "tcp",
            CheckType::Tls => "tls",
            CheckType::Icmp => "icmp",
            CheckType::Dns => "dns",
            CheckType::Push => "push",
        }
    }

    /// The type a URL scheme selects; `None` for schemes upwatch does not check.
    pub fn of_scheme(scheme: &str) -> Option<CheckType> {
        match scheme {
            "http" | "https" => Some(CheckType::Http),
            "tcp" => Some(CheckType::Tcp),
            "tls" => Some(CheckType::Tls),
            "icmp" => Some(CheckType::Icmp),
            "dns" => Some(CheckType::Dns),
            "push" => Some(CheckType::Push),
            _ => None,
        }
    }

    /// The type of the monitor checking `url` (HTTP when the scheme is unknown).
    pub fn of_url(url: &str) -> CheckType {
        url.split_once("://")
            .and_then(|(scheme, _)| CheckType::of_scheme(&scheme.to_ascii_lowercase()))
            .unwrap_or_default()
    }

    /// The placeholders a condition of a monitor of this type may name.
    ///
    /// `https` adds `[CERTIFICATE_EXPIRATION]` to `http`'s; see [`CheckType::allows`].
    pub fn placeholders(self) -> &'static [Placeholder] {
        use Placeholder::*;
        match self {
            CheckType::Http => &[
                Status,
                ResponseTime,
                Body,
                Header,
                CertificateExpiration,
                Connected,
                Ip,
            ],
            CheckType::Tcp => &[Connected, ResponseTime, Ip],
            CheckType::Tls => &[Connected, ResponseTime, Ip, CertificateExpiration],
            CheckType::Icmp => &[Connected, ResponseTime, Ip],
            CheckType::Dns => &[DnsRcode, Body, ResponseTime, Connected],
            CheckType::Push => &[],
        }
    }

    /// Whether a condition of a monitor of this type checking `url` may name `placeholder`.
    pub fn allows(self, url: &str, placeholder: Placeholder) -> bool {
        if placeholder == Placeholder::CertificateExpiration && self == CheckType::Http {
            return url.starts_with("https:");
        }
        self.placeholders().contains(&placeholder)
    }

    /// Whether checks of this type speak TLS (and so report a certificate) for `url`.
    pub fn speaks_tls(self, url: &str) -> bool {
        match self {
            CheckType::Tls => true,
            CheckType::Http => url.starts_with("https:"),
            _ => false,
        }
    }
}

impl fmt::Display for CheckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value a condition reads from an [`Observation`], written `[NAME]` in conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `[STATUS]`: the HTTP status code.
    Status,
    /// `[RESPONSE_TIME]`: milliseconds the check took.
    ResponseTime,
    /// `[BODY]`: the body (its bounded prefix), or a JSON path into it (`[BODY].a.b[0]`); for
    /// DNS, the answers.
    Body,
    /// `[HEADER].name`: a response header, by case-insensitive name.
    Header,
    /// `[CERTIFICATE_EXPIRATION]`: the time left until the certificate expires.
    CertificateExpiration,
    /// `[DNS_RCODE]`: the DNS response code (`NOERROR`, `NXDOMAIN`, ...).
    DnsRcode,
    /// `[CONNECTED]`: whether a connection was made (or a reply received).
    Connected,
    /// `[IP]`: the address that was checked.
    Ip,
}

impl Placeholder {
    /// Every placeholder, in a stable order.
    pub const ALL: [Placeholder; 8] = [
        Placeholder::Status,
        Placeholder::ResponseTime,
        Placeholder::Body,
        Placeholder::Header,
        Placeholder::CertificateExpiration,
        Placeholder::DnsRcode,
        Placeholder::Connected,
        Placeholder::Ip,
    ];

    /// How conditions write it: `[STATUS]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Status => "[STATUS]",
            Placeholder::ResponseTime => "[RESPONSE_TIME]",
            Placeholder::Body => "[BODY]",
            Placeholder::Header => "[HEADER]",
            Placeholder::CertificateExpiration => "[CERTIFICATE_EXPIRATION]",
            Placeholder::DnsRcode => "[DNS_RCODE]",
            Placeholder::Connected => "[CONNECTED]",
            Placeholder::Ip => "[IP]",
        }
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of a TLS peer's leaf certificate, taken from the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Certificate {
    /// The end of the certificate's validity (`notAfter`).
    pub expires_at: DateTime<Utc>,
    /// The start of its validity (`notBefore`).
    pub not_before: DateTime<Utc>,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
    /// The subject's distinguished name, as text.
    pub subject: String,
    /// The DNS names and addresses of the subject alternative name extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// SHA-256 of the certificate (DER), hex; a renewed certificate has a new one.
    pub fingerprint: String,
}

/// What a DNS query got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DnsFacts {
    /// The response code: `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, ...
    pub rcode: String,
    /// The answer records' data as text (`93.184.216.34`, `10 mail.example.com.`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
}

/// What a series of ICMP echo requests got back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IcmpFacts {
    pub packets_sent: u32,
    pub packets_received: u32,
    /// Lost packets in percent (0 to 100).
    pub packet_loss_percent: f64,
    /// Round-trip times of the replies, in milliseconds; absent when none came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
}

impl Eq for IcmpFacts {}

/// The facts of a check worth keeping beside its status: they travel in the result, so that
/// the status endpoints, the pages and the certificate alerts can use them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckDetails {
    /// The address that was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    /// The peer's certificate, for TLS-speaking checks whose handshake completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFacts>,
}

impl CheckDetails {
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.certificate.is_none() && self.dns.is_none() && self.icmp.is_none()
    }
}

/// Everything a probe saw, for the conditions to judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Whether a connection was made (TCP, TLS, HTTP), a reply received (ICMP, DNS).
    pub connected: bool,
    /// The HTTP status code.
    pub status_code: Option<u16>,
    /// Milliseconds the check took.
    pub response_time_ms: u32,
    /// The body's bounded prefix, when it was read; for DNS, the answers one per line.
    pub body: Option<Vec<u8>>,
    /// Response headers, names lower-case.
    pub headers: BTreeMap<String, String>,
    /// When the observation is judged (for `[CERTIFICATE_EXPIRATION]`).
    pub now: Option<DateTime<Utc>>,
    /// Facts kept in the result.
    pub details: CheckDetails,
}

/// The record types a DNS monitor may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsQueryType {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Soa,
    Srv,
    Ptr,
}

impl DnsQueryType {
    pub const ALL: [DnsQueryType; 9] = [
        DnsQueryType::A,
        DnsQueryType::Aaaa,
        DnsQueryType::Cname,
        DnsQueryType::Mx,
        DnsQueryType::Ns,
        DnsQueryType::Txt,
        DnsQueryType::Soa,
        DnsQueryType::Srv,
        DnsQueryType::Ptr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnsQueryType::A => "A",
            DnsQueryType::Aaaa => "AAAA",
            DnsQueryType::Cname => "CNAME",
            DnsQueryType::Mx => "MX",
            DnsQueryType::Ns => "NS",
            DnsQueryType::Txt => "TXT",
            DnsQueryType::Soa => "SOA",
            DnsQueryType::Srv => "SRV",
            DnsQueryType::Ptr => "PTR",
        }
    }
}

impl fmt::Display for DnsQueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a DNS monitor asks its resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsQuery {
    /// The name to look up, such as `example.com`.
    pub query_name: String,
    /// The record type.
    pub query_type: DnsQueryType,
}

/// The plain-text protocol a `tls://` check speaks before its TLS handshake (STARTTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Starttls {
    /// SMTP: the greeting, `EHLO`, `STARTTLS` (ports 25 and 587).
    Smtp,
    /// IMAP: the greeting, `STARTTLS` (port 143).
    Imap,
    /// PostgreSQL: an `SSLRequest` answered `S` (port 5432).
    Postgres,
}

impl Starttls {
    pub fn as_str(self) -> &'static str {
        match self {
            Starttls::Smtp => "smtp",
            Starttls::Imap => "imap",
            Starttls::Postgres => "postgres",
        }
    }
}
