//! The facts of a certificate, taken from the handshake of any TLS-speaking check.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use upwatch_core::observation::Certificate;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Reads expiry, issuer, subject, SANs and fingerprint from a DER certificate.
pub fn facts(der: &[u8]) -> Result<Certificate, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let validity = cert.validity();
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or_default()
    };
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let fingerprint = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Certificate {
        expires_at: time(validity.not_after),
        not_before: time(validity.not_before),
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        sans,
        fingerprint,
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}
