//! Lengths of time as people write them in settings and query strings: `90s`, `15m`, `24h`,
//! `7d`.

use chrono::TimeDelta;

/// The longest span accepted: 100 years, far beyond any retention or window.
const MAX_SECONDS: i64 = 100 * 366 * 86_400;

/// Reads a whole number followed by one unit, `s`, `m`, `h` or `d` (days of 24 hours), as in
/// `30s`, `5m`, `48h` or `90d`. Zero and negative spans, missing units, fractions, spaces and
/// spans over 100 years are refused with `None`.
pub fn parse_span(text: &str) -> Option<TimeDelta> {
    let unit = text.chars().last()?;
    let seconds_per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: i64 = digits.parse().ok()?;
    let seconds = count.checked_mul(seconds_per_unit)?;
    (1..=MAX_SECONDS)
        .contains(&seconds)
        .then(|| TimeDelta::seconds(seconds))
}

/// Writes a span in the largest unit that divides it exactly: `86400` seconds is `1d`,
/// `5400` is `90m`. The inverse of [`parse_span`] for every span it accepts.
pub fn format_span(span: TimeDelta) -> String {
    let seconds = span.num_seconds();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_unit() {
        assert_eq!(parse_span("90s"), Some(TimeDelta::seconds(90)));
        assert_eq!(parse_span("15m"), Some(TimeDelta::minutes(15)));
        assert_eq!(parse_span("48h"), Some(TimeDelta::hours(48)));
        assert_eq!(parse_span("7d"), Some(TimeDelta::days(7)));
    }

    #[test]
    fn refuses_what_is_not_a_positive_whole_span() {
        for bad in [
            "",
            "d",
            "7",
            "0d",
            "-1d",
            "1.5h",
            " 7d",
            "7d ",
            "7 d",
            "7D",
            "7w",
            "+7d",
            "99999999999d",
        ] {
            assert_eq!(parse_span(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_in_the_largest_exact_unit_and_round_trips() {
        assert_eq!(format_span(TimeDelta::days(1)), "1d");
        assert_eq!(format_span(TimeDelta::minutes(90)), "90m");
        assert_eq!(format_span(TimeDelta::seconds(61)), "61s");
        for text in ["1s", "59s", "1m", "61m", "1h", "25h", "1d", "400d"] {
            assert_eq!(format_span(parse_span(text).unwrap()), text);
        }
    }
}
