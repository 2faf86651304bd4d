//! The static files the pages use, embedded in the binary: nothing is fetched from anywhere
//! but the page's own origin.
//!
//! Pages link each file as `/assets/{name}?v={hash}`: a response to the current hash is
//! cached for a year (`immutable`), any other is revalidated with its `ETag`.

use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/app.js"),
    },
    // uPlot (MIT, see assets/vendor/uplot/LICENSE), for the response-time chart only.
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// The content hash of every asset, computed once.
fn hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| ASSETS.iter().map(|a| fnv(a.bytes)).collect())
}

/// FNV-1a, 64 bits: stable across builds and platforms, enough to tell versions apart.
fn fnv(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    ASSETS
        .iter()
        .zip(hashes())
        .find(|(a, _)| a.name == name)
        .map(|(a, h)| (a, h.as_str()))
}

/// The URL a page links an asset by.
pub fn url(name: &str) -> String {
    let (_, hash) = find(name).expect("a known asset");
    format!("/assets/{name}?v={hash}")
}

/// The size in bytes of an embedded asset, for the budget tests.
pub fn size(name: &str) -> Option<usize> {
    find(name).map(|(a, _)| a.bytes.len())
}

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

/// `GET /assets/{name}`.
pub async fn serve(
    Path(name): Path<String>,
    Query(version): Query<Version>,
    headers: HeaderMap,
) -> Response {
    let Some((asset, hash)) = find(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{hash}\"");
    let cache = if version.v.as_deref() == Some(hash) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
}
