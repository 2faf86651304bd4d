//! Badges for READMEs: flat, shields-style SVG images of a monitor's uptime and status.
//!
//! Badges are served without the API token, since an image in a README cannot send headers:
//! anyone who knows a monitor's id can read its uptime and status, and nothing else.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use upwatch_core::MonitorStatus;

use crate::error::{quote, ApiError};
use crate::extract::{IdPath, Query};
use crate::sites::no_site;
use crate::status::live_status;
use crate::uptime::WINDOWS;
use crate::Shared;

/// How long clients and proxies may keep a badge.
const CACHE_CONTROL: &str = "max-age=60";
/// The window of the uptime badge when none is given.
const DEFAULT_WINDOW: &str = "30d";

const GREEN: &str = "#4c1";
const YELLOWGREEN: &str = "#a4a61d";
const YELLOW: &str = "#dfb317";
const ORANGE: &str = "#fe7d37";
const RED: &str = "#e05d44";
const GREY: &str = "#9f9f9f";
const BLUE: &str = "#007ec6";

/// The query of the uptime badge.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BadgeParams {
    /// `24h`, `7d`, `30d` or `90d` (default `30d`).
    #[param(value_type = Option<String>, pattern = "^(24h|7d|30d|90d)$", example = "30d")]
    pub window: Option<String>,
}

/// `GET /api/v1/sites/{id}/badge/uptime.svg?window=30d`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/badge/uptime.svg", tag = "badges", operation_id = "get_uptime_badge", security(()), params(("id" = uuid::Uuid, Path, description = "The id of the resource."), BadgeParams), responses((status = 200, description = "An SVG badge of the uptime.", body = String, content_type = "image/svg+xml")))]
pub async fn uptime(
    State(state): State<Shared>,
    IdPath(id): IdPath,
    Query(params): Query<BadgeParams>,
) -> Result<Response, ApiError> {
    let raw = params.window.as_deref().unwrap_or(DEFAULT_WINDOW);
    let (name, span) = WINDOWS
        .iter()
        .copied()
        .find(|(name, _)| *name == raw.trim())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`window` must be one of 24h, 7d, 30d or 90d, not `{}`.",
                quote(raw)
            ))
        })?;
    if state.store.get_monitor(id).await?.is_none() {
        return Err(no_site(id));
    }
    let counts = state.stats.counts(&[id], span, Utc::now()).await?;
    let percent = counts.get(&id).and_then(|c| c.percent());
    let (value, color) = match percent {
        Some(p) => (format_percent(p), uptime_color(p)),
        None => ("no data".to_string(), GREY),
    };
    Ok(svg_response(render(
        &format!("uptime {name}"),
        &value,
        color,
    )))
}

/// `GET /api/v1/sites/{id}/badge/status.svg`.
#[utoipa::path(get, path = "/api/v1/sites/{id}/badge/status.svg", tag = "badges", operation_id = "get_status_badge", security(()), params(("id" = uuid::Uuid, Path, description = "The id of the resource.")), responses((status = 200, description = "An SVG badge of the live status.", body = String, content_type = "image/svg+xml")))]
pub async fn status(State(state): State<Shared>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let live = live_status(&state, id).await?;
    let status = live.shown_state().status;
    let color = match status {
        MonitorStatus::Up => GREEN,
        MonitorStatus::Down => RED,
        MonitorStatus::Maintenance => BLUE,
        MonitorStatus::Pending | MonitorStatus::Paused | MonitorStatus::Stale => GREY,
    };
    Ok(svg_response(render("status", status.as_str(), color)))
}

fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        svg,
    )
        .into_response()
}

/// A percentage with at most two decimals and no trailing zeros: `99.95%`, `99.9%`, `100%`.
fn format_percent(percent: f64) -> String {
    let text = format!("{percent:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The colour of an uptime, greener the closer to 100%.
fn uptime_color(percent: f64) -> &'static str {
    match percent {
        p if p >= 99.9 => GREEN,
        p if p >= 99.0 => YELLOWGREEN,
        p if p >= 95.0 => YELLOW,
        p if p >= 90.0 => ORANGE,
        _ => RED,
    }
}

/// A flat two-part badge: `label` on grey, `value` on `color`, each part as wide as its text
/// in 11 px Verdana plus 5 px of padding on either side, with a `<title>` (and `aria-label`)
/// that screen readers and tooltips show.
pub fn render(label: &str, value: &str, color: &str) -> String {
    let label_text = text_width(label);
    let value_text = text_width(value);
    let label_width = label_text + 10;
    let value_width = value_text + 10;
    let width = label_width + value_width;
    let title = escape(&format!("{label}: {value}"));
    let (label, value, color) = (escape(label), escape(value), escape(color));
    // Text is drawn at ten times the size and scaled down, as shields does, for finer
    // positioning.
    let label_x = label_width * 5;
    let value_x = label_width * 10 + value_width * 5;
    let (label_len, value_len) = (label_text * 10, value_text * 10);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}"><title>{title}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="#555"/><rect x="{label_width}" width="{value_width}" height="20" fill="{color}"/><rect width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{label_len}">{label}</text><text x="{label_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{label_len}">{label}</text><text aria-hidden="true" x="{value_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{value_len}">{value}</text><text x="{value_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{value_len}">{value}</text></g></svg>"##
    )
}

/// The width of `text` in 11 px Verdana, in whole pixels (rounded up).
fn text_width(text: &str) -> u32 {
    let tenths: u32 = text.chars().map(char_width_tenths).sum();
    tenths.div_ceil(10)
}

/// The advance of one character in 11 px Verdana, in tenths of a pixel (approximate outside
/// ASCII).
fn char_width_tenths(c: char) -> u32 {
    match c {
        'i' | 'l' | '|' => 30,
        ' ' | '.' | ',' | ':' | ';' | '\'' | 'j' | 'f' => 39,
        '!' | 't' | '(' | ')' | '[' | ']' | 'I' => 43,
        'r' | '-' | '/' | '"' => 47,
        'c' | 's' | 'z' | 'J' => 57,
        'k' | 'v' | 'x' | 'y' | '?' | '_' => 65,
        'a' | 'e' | 'o' => 67,
        'b' | 'd' | 'g' | 'h' | 'n' | 'p' | 'q' | 'u' | 'L' | 'F' | 'T' => 69,
        '0'..='9' | '#' | '$' | '+' | '<' | '=' | '>' | '~' | 'E' | 'P' | 'S' | 'Z' | 'K' => 70,
        'B' | 'C' | 'R' | 'X' | 'Y' | 'V' | 'A' => 75,
        'D' | 'G' | 'H' | 'N' | 'O' | 'Q' | 'U' => 82,
        'w' | '&' => 90,
        'm' | 'M' => 107,
        'W' | '@' => 117,
        '%' => 123,
        c if c.is_ascii() => 70,
        _ => 80,
    }
}

/// Escapes text for SVG (XML) content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_short() {
        assert_eq!(format_percent(99.95), "99.95%");
        assert_eq!(format_percent(99.9), "99.9%");
        assert_eq!(format_percent(100.0), "100%");
        assert_eq!(format_percent(0.0), "0%");
        assert_eq!(format_percent(66.66), "66.66%");
    }

    #[test]
    fn colours_follow_thresholds() {
        assert_eq!(uptime_color(100.0), GREEN);
        assert_eq!(uptime_color(99.9), GREEN);
        assert_eq!(uptime_color(99.5), YELLOWGREEN);
        assert_eq!(uptime_color(96.0), YELLOW);
        assert_eq!(uptime_color(90.0), ORANGE);
        assert_eq!(uptime_color(12.0), RED);
    }

    #[test]
    fn wider_text_makes_a_wider_badge() {
        let width = |svg: &str| -> u32 {
            let rest = svg.split("width=\"").nth(1).unwrap();
            rest.split('"').next().unwrap().parse().unwrap()
        };
        let short = render("uptime 24h", "0%", RED);
        let long = render("uptime 24h", "99.95%", GREEN);
        assert!(width(&long) > width(&short));
        assert_eq!(
            width(&short),
            text_width("uptime 24h") + 10 + text_width("0%") + 10
        );
    }

    #[test]
    fn text_is_escaped() {
        let svg = render("a<b", "\"x\" & 'y'", GREY);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains("&quot;x&quot; &amp; &apos;y&apos;"));
        assert!(!svg.contains("a<b"));
        assert!(svg.contains("<title>a&lt;b: &quot;x&quot; &amp; &apos;y&apos;</title>"));
    }
}
