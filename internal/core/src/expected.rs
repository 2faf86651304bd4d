//! The expected-status language: which HTTP status codes count as "up".
//!
//! A monitor lists matchers; a response is up when any matcher accepts its code. Each matcher
//! is written as a number (`200`), a class (`"2xx"`) or an inclusive range (`"200-299"`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One accepted code or inclusive range of codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusMatcher {
    /// Exactly this code.
    Code(u16),
    /// Every code from the first to the second, both included.
    Range(u16, u16),
}

impl StatusMatcher {
    /// Whether `code` is accepted by this matcher.
    pub fn matches(&self, code: u16) -> bool {
        match *self {
            StatusMatcher::Code(c) => c == code,
            StatusMatcher::Range(lo, hi) => (lo..=hi).contains(&code),
        }
    }
}

/// Why an expected-status matcher could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a status code or range: {reason} (expected forms: 200, \"2xx\", \"200-299\")"
)]
pub struct ParseStatusError {
    input: String,
    reason: &'static str,
}

fn code(input: &str, text: &str) -> Result<u16, ParseStatusError> {
    let value: u16 = text.trim().parse().map_err(|_| ParseStatusError {
        input: input.to_string(),
        reason: "not a number",
    })?;
    check_code(input, value)
}

fn check_code(input: &str, value: u16) -> Result<u16, ParseStatusError> {
    if (100..=599).contains(&value) {
        Ok(value)
    } else {
        Err(ParseStatusError {
            input: input.to_string(),
            reason: "HTTP status codes run from 100 to 599",
        })
    }
}

impl FromStr for StatusMatcher {
    type Err = ParseStatusError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim();
        let lower = text.to_ascii_lowercase();
        if lower.len() == 3 && lower.ends_with("xx") {
            let class = lower.as_bytes()[0];
            if !(b'1'..=b'5').contains(&class) {
                return Err(ParseStatusError {
                    input: input.to_string(),
                    reason: "a class is 1xx to 5xx",
                });
            }
            let lo = u16::from(class - b'0') * 100;
            return Ok(StatusMatcher::Range(lo, lo + 99));
        }
        if let Some((lo, hi)) = text.split_once('-') {
            let (lo, hi) = (code(input, lo)?, code(input, hi)?);
            if lo > hi {
                return Err(ParseStatusError {
                    input: input.to_string(),
                    reason: "the range starts after it ends",
                });
            }
            return Ok(if lo == hi {
                StatusMatcher::Code(lo)
            } else {
                StatusMatcher::Range(lo, hi)
            });
        }
        code(input, text).map(StatusMatcher::Code)
    }
}

impl fmt::Display for StatusMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StatusMatcher::Code(c) => write!(f, "{c}"),
            StatusMatcher::Range(lo, hi) if lo % 100 == 0 && hi == lo + 99 => {
                write!(f, "{}xx", lo / 100)
            }
            StatusMatcher::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

impl Serialize for StatusMatcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            StatusMatcher::Code(c) => serializer.serialize_u16(c),
            range => serializer.collect_str(&range),
        }
    }
}

impl<'de> Deserialize<'de> for StatusMatcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatcherVisitor;
        impl Visitor<'_> for MatcherVisitor {
            type Value = StatusMatcher;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code such as 200, or a string such as \"2xx\" or \"200-299\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusMatcher, E> {
                let text = v.to_string();
                let value = u16::try_from(v).map_err(|_| {
                    E::custom(format!("{v} is not an HTTP status code (100 to 599)"))
                })?;
                check_code(&text, value)
                    .map(StatusMatcher::Code)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusMatcher, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not an HTTP status code (100 to 599)"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusMatcher, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(MatcherVisitor)
    }
}

impl utoipa::PartialSchema for StatusMatcher {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(100))
                    .maximum(Some(599))
                    .description(Some("One status code.")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "A class such as `2xx`, or an inclusive range such as `200-299`.",
                    ))
                    .examples(["2xx", "200-299"]),
            )
            .description(Some(
                "A status code the monitor expects: one code, a class or a range.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for StatusMatcher {}

/// The full list of matchers of one monitor; a code is expected when any matcher accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExpectedStatus(pub Vec<StatusMatcher>);

impl utoipa::PartialSchema for ExpectedStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::ArrayBuilder;
        ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("StatusMatcher"))
            .min_items(Some(1))
            .description(Some(
                "Status codes that count as up: the monitor is up when any of them matches.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ExpectedStatus {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("StatusMatcher".to_string(), StatusMatcher::schema()));
    }
}

impl Default for ExpectedStatus {
    /// Only `200`, as most health endpoints answer.
    fn default() -> Self {
        ExpectedStatus(vec![StatusMatcher::Code(200)])
    }
}

impl ExpectedStatus {
    /// Whether `code` is an expected answer.
    pub fn matches(&self, code: u16) -> bool {
        self.0.iter().any(|m| m.matches(code))
    }
}

impl fmt::Display for ExpectedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let cases: &[(&str, StatusMatcher)] = &[
            ("200", StatusMatcher::Code(200)),
            (" 404 ", StatusMatcher::Code(404)),
            ("2xx", StatusMatcher::Range(200, 299)),
            ("5XX", StatusMatcher::Range(500, 599)),
            ("200-299", StatusMatcher::Range(200, 299)),
            ("301-302", StatusMatcher::Range(301, 302)),
            ("204-204", StatusMatcher::Code(204)),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<StatusMatcher>().unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        for input in [
            "", "abc", "6xx", "0xx", "99", "600", "300-200", "2xx-3xx", "-1", "200-",
        ] {
            let err = input.parse::<StatusMatcher>().unwrap_err();
            assert!(err.to_string().contains("expected forms"), "{input}: {err}");
        }
    }

    #[test]
    fn matches_codes_and_edges() {
        let expected: ExpectedStatus = serde_json::from_str(r#"[200, "3xx", "401-403"]"#).unwrap();
        for ok in [200, 300, 399, 401, 402, 403] {
            assert!(expected.matches(ok), "{ok}");
        }
        for bad in [201, 299, 400, 404, 500] {
            assert!(!expected.matches(bad), "{bad}");
        }
    }

    #[test]
    fn round_trips_through_json_in_canonical_form() {
        let expected: ExpectedStatus =
            serde_json::from_str(r#"[200, "2XX", "200-250", "418-418"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&expected).unwrap(),
            r#"[200,"2xx","200-250",418]"#
        );
    }

    #[test]
    fn json_numbers_out_of_range_are_refused() {
        for input in ["[99]", "[600]", "[-5]", "[70000]"] {
            assert!(
                serde_json::from_str::<ExpectedStatus>(input).is_err(),
                "{input}"
            );
        }
    }

    #[test]
    fn default_is_200_only() {
        let d = ExpectedStatus::default();
        assert!(d.matches(200));
        assert!(!d.matches(204));
    }
}
