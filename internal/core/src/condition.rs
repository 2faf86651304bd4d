//! Conditions on a check's observation, Gatus-style: `[STATUS] == 200`,
//! `[BODY].status == UP`, `len([BODY].items) > 0`, `[CERTIFICATE_EXPIRATION] > 72h`.
//!
//! A condition is parsed once, when a monitor is created, and judged against every
//! [`Observation`]; a failed one says what it saw: `[BODY].status == UP (was DOWN)`.
//!
//! The language, after Gatus' `config/endpoint/condition.go`:
//!
//! - A condition is `<left> <operator> <right>` with one of `==`, `!=`, `<`, `<=`, `>`, `>=`.
//!   The operator is the first one outside brackets and parentheses.
//! - A side is a placeholder (`[STATUS]`, `[RESPONSE_TIME]`, `[BODY]`, `[BODY].a.b[0]`,
//!   `[HEADER].name`, `[CERTIFICATE_EXPIRATION]`, `[DNS_RCODE]`, `[CONNECTED]`, `[IP]`), a
//!   function (`len(...)`, `has(...)`, `pat(...)`, `any(...)`) or a literal written as is (no
//!   quoting). At least one side reads a placeholder.
//! - Two values are equal as numbers when both read as numbers, and as text otherwise; the
//!   ordering operators need numbers. A literal length of time (`72h`, `30m`, `7d`, `48h30m`,
//!   `500ms`) counts as its milliseconds, which is how `[CERTIFICATE_EXPIRATION]` and
//!   `[RESPONSE_TIME]` are measured.
//! - A JSON path or header that is not there fails every comparison, `!=` included (use
//!   `has(...)` to accept its absence); a placeholder the observation lacks altogether (no
//!   status code after a refused connection) fails too, saying so.
//!
//! Where it differs from Gatus: placeholders and literals are checked when the condition is
//! parsed (an unknown placeholder, `pat(...)` with `<`, or `[STATUS] == abc` is refused rather
//! than never holding), `pat(...)` knows only `*` and `?`, a JSON `null` is a value (`null`)
//! that `has(...)` finds, `len(...)` counts characters rather than bytes, and `any(...)`
//! compares its values as `==` does (numbers as numbers).

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;

use serde_json::Value as Json;

use crate::observation::{Observation, Placeholder};

/// The most characters of a value a failure message shows.
const SHOWN_VALUE_MAX_CHARS: usize = 100;

/// One parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The condition as written, trimmed.
    text: String,
    left: Operand,
    operator: Operator,
    right: Operand,
}

/// Why a condition did not parse, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConditionError {}

fn error(message: impl Into<String>) -> ConditionError {
    ConditionError(message.into())
}

impl Condition {
    /// Parses `text`, refusing with a sentence that says what was expected.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(error(
                "the condition is empty; expected something like [STATUS] == 200",
            ));
        }
        let (at, operator) = find_operator(text)?;
        let op = operator.as_str();
        let left_text = text[..at].trim();
        let right_text = text[at + op.len()..].trim();
        if left_text.is_empty() {
            return Err(error(format!(
                "expected a value before {op}, as in [STATUS] {op} 200"
            )));
        }
        if right_text.is_empty() {
            return Err(error(format!(
                "expected a value after {op}, as in [STATUS] {op} 200"
            )));
        }
        if let Some(second) = second_operator(right_text) {
            return Err(error(format!(
                "expected a single comparison, but found a second operator {} after {op}",
                second.as_str()
            )));
        }
        let left = Operand::parse(left_text)?;
        let right = Operand::parse(right_text)?;
        check_operands((left_text, &left), operator, (right_text, &right))?;
        Ok(Condition {
            text: text.to_string(),
            left,
            operator,
            right,
        })
    }

    /// The placeholders the condition reads, on both sides, each once, left first.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut placeholders = Vec::with_capacity(2);
        for source in [self.left.source(), self.right.source()]
            .into_iter()
            .flatten()
        {
            let placeholder = source.placeholder();
            if !placeholders.contains(&placeholder) {
                placeholders.push(placeholder);
            }
        }
        placeholders
    }

    /// Whether judging it needs the response body.
    pub fn needs_body(&self) -> bool {
        self.placeholders().contains(&Placeholder::Body)
    }

    /// Judges `observation`; a failure is the condition with the value it saw, as in
    /// `[STATUS] == 200 (was 503)`.
    pub fn evaluate(&self, observation: &Observation) -> Result<(), String> {
        let facts = Facts::new(observation);
        let left = self.left.resolve(&facts);
        let right = self.right.resolve(&facts);
        for side in [&left, &right] {
            if let Side::Seen(Seen::Unavailable(placeholder)) = side {
                return Err(self.failure(&format!("{placeholder} was not available")));
            }
        }
        let missing = |side: &Side<'_>| matches!(side, Side::Seen(Seen::Missing(_)));
        if missing(&left) || missing(&right) {
            return Err(self.failure(&shown(&left, &right)));
        }
        let holds = if self.operator.is_equality() {
            matches(&left, &right) == (self.operator == Operator::Eq)
        } else {
            let (a, b) = match (left.number(), right.number()) {
                (Some(a), Some(b)) => (a, b),
                (None, _) => return Err(self.failure(&not_a_number(&left, &right))),
                (_, None) => return Err(self.failure(&not_a_number(&right, &left))),
            };
            match (a.compare(b), self.operator) {
                (None, _) => false,
                (Some(ordering), Operator::Lt) => ordering == Ordering::Less,
                (Some(ordering), Operator::Le) => ordering != Ordering::Greater,
                (Some(ordering), Operator::Gt) => ordering == Ordering::Greater,
                (Some(ordering), Operator::Ge) => ordering != Ordering::Less,
                (Some(_), Operator::Eq | Operator::Ne) => unreachable!("handled above"),
            }
        };
        if holds {
            Ok(())
        } else {
            Err(self.failure(&shown(&left, &right)))
        }
    }

    fn failure(&self, seen: &str) -> String {
        format!("{} ({seen})", self.text)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Judges every condition in order; the failure is the first one's.
pub fn evaluate_all(conditions: &[Condition], observation: &Observation) -> Result<(), String> {
    conditions
        .iter()
        .try_for_each(|condition| condition.evaluate(observation))
}

// The parsed form.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Operator {
    /// Every operator, the two-character ones first so that `<=` is not read as `<`.
    const LONGEST_FIRST: [Operator; 6] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Le,
        Operator::Ge,
        Operator::Lt,
        Operator::Gt,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, Operator::Eq | Operator::Ne)
    }

    /// The operator that `text` starts with, if any.
    fn at_start_of(text: &str) -> Option<Operator> {
        Operator::LONGEST_FIRST
            .into_iter()
            .find(|op| text.starts_with(op.as_str()))
    }
}

/// One side of a condition.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// A placeholder's value.
    Read(Source),
    /// `len(...)`: the length of a placeholder's value.
    Len(Source),
    /// `has(...)`: whether a placeholder has a value.
    Has(Source),
    /// A value written as is.
    Literal(Literal),
    /// `pat(...)`: a glob over the whole value, as characters.
    Pattern(Vec<char>),
    /// `any(...)`: values one of which the other side equals.
    Any(Vec<Literal>),
}

/// What a side's value is, for the checks made when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Bool,
    Text,
}

impl Operand {
    fn parse(side: &str) -> Result<Operand, ConditionError> {
        if looks_like_placeholder(side) {
            return Source::parse(side).map(Operand::Read);
        }
        let Some(name) = function_name(side) else {
            return Ok(Operand::Literal(Literal::new(side)));
        };
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "len" | "has" => {
                let argument = call_argument(side, &lower)?;
                if !looks_like_placeholder(argument) {
                    let what = if argument.is_empty() {
                        "nothing".to_string()
                    } else {
                        format!("`{argument}`")
                    };
                    return Err(error(format!(
                        "{lower}(...) takes a placeholder such as [BODY].items, not {what}"
                    )));
                }
                let source = Source::parse(argument)?;
                if lower == "has" {
                    return Ok(Operand::Has(source));
                }
                if source.kind() != Kind::Text {
                    return Err(error(format!(
                        "len(...) takes [BODY], [BODY].path, [HEADER].name, [IP] or [DNS_RCODE], \
                         not {argument}"
                    )));
                }
                Ok(Operand::Len(source))
            }
            "pat" | "any" => {
                let Some(argument) = side
                    .strip_suffix(')')
                    .map(|rest| rest[name.len() + 1..].trim())
                else {
                    return Err(error(format!("unbalanced parentheses in {lower}(...)")));
                };
                if lower == "pat" {
                    if argument.is_empty() {
                        return Err(error("pat() needs a pattern, as in pat(2*)"));
                    }
                    return Ok(Operand::Pattern(argument.chars().collect()));
                }
                let values: Vec<&str> = argument.split(',').map(str::trim).collect();
                if values.iter().any(|value| value.is_empty()) {
                    return Err(error(
                        "any(...) needs values separated by commas, as in any(200, 201)",
                    ));
                }
                Ok(Operand::Any(values.into_iter().map(Literal::new).collect()))
            }
            _ if side.ends_with(')') => Err(error(format!(
                "unknown function {name}(...); expected len(...), has(...), pat(...) or any(...)"
            ))),
            _ => Ok(Operand::Literal(Literal::new(side))),
        }
    }

    /// The placeholder the side reads, if it reads one.
    fn source(&self) -> Option<&Source> {
        match self {
            Operand::Read(source) | Operand::Len(source) | Operand::Has(source) => Some(source),
            Operand::Literal(_) | Operand::Pattern(_) | Operand::Any(_) => None,
        }
    }

    /// What the side's value is; `None` for literals and the functions that only compare.
    fn kind(&self) -> Option<Kind> {
        match self {
            Operand::Read(source) => Some(source.kind()),
            Operand::Len(_) => Some(Kind::Number),
            Operand::Has(_) => Some(Kind::Bool),
            Operand::Literal(_) | Operand::Pattern(_) | Operand::Any(_) => None,
        }
    }

    fn resolve<'c>(&'c self, facts: &Facts<'_>) -> Side<'c> {
        match self {
            Operand::Read(source) => Side::Seen(facts.read(source)),
            Operand::Len(source) => Side::Seen(facts.len(source)),
            Operand::Has(source) => Side::Seen(Seen::Bool(facts.has(source))),
            Operand::Literal(literal) => Side::Literal(literal),
            Operand::Pattern(pattern) => Side::Pattern(pattern),
            Operand::Any(values) => Side::Any(values),
        }
    }
}

/// The refusals that need both sides: a condition reading nothing, and comparisons that
/// could never hold.
fn check_operands(
    left: (&str, &Operand),
    operator: Operator,
    right: (&str, &Operand),
) -> Result<(), ConditionError> {
    let op = operator.as_str();
    if left.1.source().is_none() && right.1.source().is_none() {
        return Err(error(format!(
            "expected a placeholder such as [STATUS] or [BODY].status on at least one side of {op}"
        )));
    }
    for ((text, operand), (_, other)) in [(left, right), (right, left)] {
        match operand {
            Operand::Pattern(_) | Operand::Any(_) if !operator.is_equality() => {
                let name = if matches!(operand, Operand::Pattern(_)) {
                    "pat"
                } else {
                    "any"
                };
                return Err(error(format!(
                    "{name}(...) may only be compared with == or !="
                )));
            }
            _ => {}
        }
        let Some(kind) = operand.kind() else {
            continue;
        };
        let literal = match other {
            Operand::Literal(literal) => Some(literal),
            _ => None,
        };
        match (kind, literal) {
            (Kind::Bool, _) if !operator.is_equality() => {
                return Err(error(format!(
                    "{text} is true or false, so it may only be compared with == or !="
                )));
            }
            (Kind::Bool, Some(literal)) if literal.text != "true" && literal.text != "false" => {
                return Err(error(format!(
                    "expected true or false to compare with {text}, not `{}`",
                    literal.text
                )));
            }
            (Kind::Number, Some(literal)) if literal.number.is_none() => {
                let expected = if operand.source() == Some(&Source::CertificateExpiration) {
                    "a length of time such as 72h, or milliseconds,"
                } else {
                    "a number"
                };
                return Err(error(format!(
                    "expected {expected} to compare with {text}, not `{}`",
                    literal.text
                )));
            }
            (Kind::Text, Some(literal))
                if !operator.is_equality() && literal.number.is_none() =>
            {
                return Err(error(format!(
                    "expected a number or a length of time such as 72h after {op}, not `{}`",
                    literal.text
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A placeholder, with its path or header name.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Status,
    ResponseTime,
    Body,
    BodyPath(Vec<Step>),
    Header(String),
    CertificateExpiration,
    DnsRcode,
    Connected,
    Ip,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Source {
    /// Parses a side that [`looks_like_placeholder`].
    fn parse(side: &str) -> Result<Source, ConditionError> {
        let close = side.find(']').expect("a placeholder has a closing bracket");
        let (name, rest) = side.split_at(close + 1);
        let simple = |source: Source| {
            if rest.is_empty() {
                Ok(source)
            } else {
                Err(error(format!(
                    "unexpected `{rest}` after {name}; only [BODY] and [HEADER] take a path"
                )))
            }
        };
        match name.to_ascii_uppercase().as_str() {
            "[STATUS]" => simple(Source::Status),
            "[RESPONSE_TIME]" => simple(Source::ResponseTime),
            "[CERTIFICATE_EXPIRATION]" => simple(Source::CertificateExpiration),
            "[DNS_RCODE]" => simple(Source::DnsRcode),
            "[CONNECTED]" => simple(Source::Connected),
            "[IP]" => simple(Source::Ip),
            "[BODY]" if rest.is_empty() => Ok(Source::Body),
            "[BODY]" => parse_path(side, name, rest).map(Source::BodyPath),
            "[HEADER]" => match rest.strip_prefix('.').map(str::trim) {
                Some(header) if !header.is_empty() => {
                    Ok(Source::Header(header.to_ascii_lowercase()))
                }
                _ => Err(error(
                    "expected a header name after [HEADER], as in [HEADER].content-type",
                )),
            },
            _ => {
                let known: Vec<&str> = Placeholder::ALL.iter().map(|p| p.as_str()).collect();
                Err(error(format!(
                    "unknown placeholder {name}; expected one of {}",
                    known.join(", ")
                )))
            }
        }
    }

    fn placeholder(&self) -> Placeholder {
        match self {
            Source::Status => Placeholder::Status,
            Source::ResponseTime => Placeholder::ResponseTime,
            Source::Body | Source::BodyPath(_) => Placeholder::Body,
            Source::Header(_) => Placeholder::Header,
            Source::CertificateExpiration => Placeholder::CertificateExpiration,
            Source::DnsRcode => Placeholder::DnsRcode,
            Source::Connected => Placeholder::Connected,
            Source::Ip => Placeholder::Ip,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Source::Status | Source::ResponseTime | Source::CertificateExpiration => Kind::Number,
            Source::Connected => Kind::Bool,
            Source::Body
            | Source::BodyPath(_)
            | Source::Header(_)
            | Source::DnsRcode
            | Source::Ip => Kind::Text,
        }
    }
}

/// Reads the path after `[BODY]`: `.key` and `[index]` steps, as in `.data.items[0].id`.
fn parse_path(side: &str, name: &str, mut rest: &str) -> Result<Vec<Step>, ConditionError> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot.find(['.', '[']).unwrap_or(after_dot.len());
            let key = &after_dot[..end];
            if key.is_empty() {
                return Err(error(format!("expected a key after `.` in {side}")));
            }
            if key.contains(']') {
                return Err(error(format!("unbalanced brackets in {side}")));
            }
            steps.push(Step::Key(key.to_string()));
            rest = &after_dot[end..];
        } else if let Some(after_bracket) = rest.strip_prefix('[') {
            let Some(end) = after_bracket.find(']') else {
                return Err(error(format!("unbalanced brackets in {side}")));
            };
            let index = &after_bracket[..end];
            let parsed = index
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| index.parse::<usize>().ok())
                .flatten();
            let Some(index) = parsed else {
                return Err(error(format!(
                    "expected an array index such as [0] in {side}, not [{index}]"
                )));
            };
            steps.push(Step::Index(index));
            rest = &after_bracket[end + 1..];
        } else if steps.is_empty() {
            return Err(error(format!(
                "expected `.key` or `[index]` after {name}, as in {name}.status or {name}[0]"
            )));
        } else {
            return Err(error(format!(
                "unexpected `{rest}` in {side}; expected `.key` or `[index]`"
            )));
        }
    }
    Ok(steps)
}

/// A value written as is, with its meaning as a number when it has one.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    text: String,
    /// The number, or the milliseconds of a length of time such as `72h`.
    number: Option<Number>,
    /// The largest unit of a length of time, to show the other side's time in.
    unit: Option<Unit>,
}

impl Literal {
    fn new(text: &str) -> Literal {
        let (number, unit) = match parse_number(text) {
            Some(number) => (Some(number), None),
            None => match parse_length_of_time(text) {
                Some((millis, unit)) => (Some(Number::Int(millis)), Some(unit)),
                None => (None, None),
            },
        };
        Literal {
            text: text.to_string(),
            number,
            unit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Reads a whole or decimal number (`200`, `-3`, `0.5`, `1e3`); not `inf` or `NaN`.
fn parse_number(text: &str) -> Option<Number> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(Number::Int(int));
    }
    let plausible = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Number::Float)
}

/// The units of a written length of time, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    fn millis(self) -> i64 {
        match self {
            Unit::Milliseconds => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
        }
    }
}

/// Reads a length of time as whole numbers with units, `ms`, `s`, `m`, `h` or `d` (24 hours),
/// as in `72h`, `7d` or `48h30m`: its milliseconds and its largest unit.
fn parse_length_of_time(text: &str) -> Option<(i64, Unit)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut largest: Option<Unit> = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let count: i64 = text[start..i].parse().ok()?;
        let (unit, width) = if text[i..].starts_with("ms") {
            (Unit::Milliseconds, 2)
        } else {
            match bytes.get(i) {
                Some(b'd') => (Unit::Days, 1),
                Some(b'h') => (Unit::Hours, 1),
                Some(b'm') => (Unit::Minutes, 1),
                Some(b's') => (Unit::Seconds, 1),
                _ => return None,
            }
        };
        i += width;
        total = total.checked_add(count.checked_mul(unit.millis())?)?;
        largest = Some(largest.map_or(unit, |seen| seen.max(unit)));
    }
    Some((total, largest?))
}

// Splitting a condition into its sides.

/// Finds the first operator outside brackets and parentheses: its byte offset and which.
fn find_operator(text: &str) -> Result<(usize, Operator), ConditionError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut lone_equals = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => {
                if let Some(operator) = Operator::at_start_of(&text[i..]) {
                    return Ok((i, operator));
                }
                lone_equals |= b == b'=';
            }
            _ => {}
        }
    }
    if let Some(opener) = unclosed_opener(text) {
        let before = &text[..opener];
        let function = ["len", "has", "pat", "any"]
            .into_iter()
            .find(|name| before.to_ascii_lowercase().ends_with(name));
        return Err(error(match (bytes[opener], function) {
            (b'(', Some(name)) => format!("unbalanced parentheses in {name}(...)"),
            (b'(', None) => "unbalanced parentheses".to_string(),
            _ => "unbalanced brackets: a `[` is never closed".to_string(),
        }));
    }
    let hint = if lone_equals {
        "; `=` alone is not one"
    } else {
        ", as in [STATUS] == 200"
    };
    Err(error(format!(
        "expected an operator (==, !=, <, <=, >, >=) between two values{hint}"
    )))
}

/// The byte offset of the outermost `(` or `[` that is never closed.
fn unclosed_opener(text: &str) -> Option<usize> {
    let mut open = Vec::new();
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' | b'[' => open.push(i),
            b')' | b']' => {
                open.pop();
            }
            _ => {}
        }
    }
    open.first().copied()
}

/// An operator standing alone (between spaces) outside brackets and parentheses in the right
/// side, as in `[STATUS] == 200 == 201`.
fn second_operator(right: &str) -> Option<Operator> {
    let bytes = right.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => {
                let Some(operator) = Operator::at_start_of(&right[i..]) else {
                    continue;
                };
                let end = i + operator.as_str().len();
                let spaced_before = i == 0 || bytes[i - 1].is_ascii_whitespace();
                let spaced_after = end == bytes.len() || bytes[end].is_ascii_whitespace();
                if spaced_before && spaced_after {
                    return Some(operator);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `side` starts with a placeholder name such as `[STATUS]` (`[` a letter or `_`,
/// then letters, digits or `_`, then `]`).
fn looks_like_placeholder(side: &str) -> bool {
    let Some(rest) = side.strip_prefix('[') else {
        return false;
    };
    let Some(end) = rest.find(']') else {
        return false;
    };
    let name = &rest[..end];
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name of a function call such as `len(`: letters followed by `(`.
fn function_name(side: &str) -> Option<&str> {
    let end = side
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(side.len());
    (end > 0 && side[end..].starts_with('(')).then(|| &side[..end])
}

/// The argument of `len(...)` or `has(...)`, up to the parenthesis that closes the call.
fn call_argument<'s>(side: &'s str, name: &str) -> Result<&'s str, ConditionError> {
    let open = name.len();
    let mut depth = 0usize;
    for (i, b) in side.bytes().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    let tail = side[i + 1..].trim();
                    if !tail.is_empty() {
                        return Err(error(format!("unexpected `{tail}` after {name}(...)")));
                    }
                    return Ok(side[open + 1..i].trim());
                }
            }
            _ => {}
        }
    }
    Err(error(format!("unbalanced parentheses in {name}(...)")))
}

// Judging.

/// The observation, with its body parsed as JSON at most once.
struct Facts<'o> {
    observation: &'o Observation,
    json: OnceCell<Option<Json>>,
}

/// A value read from the observation.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Int(i64),
    /// A length of time, in milliseconds.
    Millis(i64),
    Bool(bool),
    Text(String),
    /// A JSON path or header that is not there.
    Missing(Absence),
    /// A placeholder the observation does not have at all.
    Unavailable(Placeholder),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absence {
    NotThere,
    BodyNotJson,
}

impl<'o> Facts<'o> {
    fn new(observation: &'o Observation) -> Facts<'o> {
        Facts {
            observation,
            json: OnceCell::new(),
        }
    }

    fn body_text(&self) -> Option<String> {
        let body = self.observation.body.as_deref()?;
        Some(String::from_utf8_lossy(body).trim().to_string())
    }

    fn json(&self) -> Option<&Json> {
        self.json
            .get_or_init(|| {
                let body = self.observation.body.as_deref()?;
                serde_json::from_slice(body).ok()
            })
            .as_ref()
    }

    /// The JSON value at `steps`, or why there is none.
    fn at_path(&self, steps: &[Step]) -> Result<&Json, Seen> {
        if self.observation.body.is_none() {
            return Err(Seen::Unavailable(Placeholder::Body));
        }
        let root = self.json().ok_or(Seen::Missing(Absence::BodyNotJson))?;
        steps
            .iter()
            .try_fold(root, |value, step| match step {
                Step::Key(key) => value.get(key.as_str()),
                Step::Index(index) => value.get(*index),
            })
            .ok_or(Seen::Missing(Absence::NotThere))
    }

    fn read(&self, source: &Source) -> Seen {
        let observation = self.observation;
        let details = &observation.details;
        let available = |value: Option<Seen>| {
            value.unwrap_or_else(|| Seen::Unavailable(source.placeholder()))
        };
        match source {
            Source::Status => available(observation.status_code.map(|s| Seen::Int(s.into()))),
            Source::ResponseTime => Seen::Int(observation.response_time_ms.into()),
            Source::Body => available(self.body_text().map(Seen::Text)),
            Source::BodyPath(steps) => match self.at_path(steps) {
                Ok(value) => Seen::Text(json_text(value)),
                Err(seen) => seen,
            },
            Source::Header(name) => match observation.headers.get(name) {
                Some(value) => Seen::Text(value.clone()),
                None => Seen::Missing(Absence::NotThere),
            },
            Source::CertificateExpiration => {
                let left = details.certificate.as_ref().zip(observation.now).map(
                    |(certificate, now)| {
                        Seen::Millis((certificate.expires_at - now).num_milliseconds())
                    },
                );
                available(left)
            }
            Source::DnsRcode => available(
                details
                    .dns
                    .as_ref()
                    .map(|dns| Seen::Text(dns.rcode.clone())),
            ),
            Source::Connected => Seen::Bool(observation.connected),
            Source::Ip => available(details.ip.map(|ip| Seen::Text(ip.to_string()))),
        }
    }

    fn len(&self, source: &Source) -> Seen {
        let count = |n: usize| Seen::Int(i64::try_from(n).unwrap_or(i64::MAX));
        match source {
            Source::Body => match (self.json(), self.body_text()) {
                (_, None) => Seen::Unavailable(Placeholder::Body),
                (Some(json @ (Json::Array(_) | Json::Object(_) | Json::String(_))), _) => {
                    count(json_len(json))
                }
                (_, Some(text)) => count(text.chars().count()),
            },
            Source::BodyPath(steps) => match self.at_path(steps) {
                Ok(value) => count(json_len(value)),
                Err(seen) => seen,
            },
            _ => match self.read(source) {
                Seen::Text(text) => count(text.chars().count()),
                other => other,
            },
        }
    }

    fn has(&self, source: &Source) -> bool {
        match source {
            Source::Body => self.body_text().is_some_and(|text| !text.is_empty()),
            Source::BodyPath(steps) => self.at_path(steps).is_ok(),
            _ => match self.read(source) {
                Seen::Text(text) => !text.is_empty(),
                Seen::Missing(_) | Seen::Unavailable(_) => false,
                Seen::Int(_) | Seen::Millis(_) | Seen::Bool(_) => true,
            },
        }
    }
}

/// A JSON value as conditions see it: strings unquoted, everything else as compact JSON.
fn json_text(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The length of a JSON value: items, keys, characters, or the characters of its text.
fn json_len(value: &Json) -> usize {
    match value {
        Json::Array(items) => items.len(),
        Json::Object(fields) => fields.len(),
        Json::String(text) => text.chars().count(),
        other => other.to_string().chars().count(),
    }
}

/// A side of a condition being judged.
enum Side<'c> {
    Seen(Seen),
    Literal(&'c Literal),
    Pattern(&'c [char]),
    Any(&'c [Literal]),
}

impl Side<'_> {
    /// The side as text, for comparing as text and for patterns.
    fn text(&self) -> String {
        match self {
            Side::Seen(Seen::Int(i) | Seen::Millis(i)) => i.to_string(),
            Side::Seen(Seen::Bool(b)) => b.to_string(),
            Side::Seen(Seen::Text(text)) => text.clone(),
            Side::Literal(literal) => literal.text.clone(),
            Side::Seen(Seen::Missing(_) | Seen::Unavailable(_))
            | Side::Pattern(_)
            | Side::Any(_) => String::new(),
        }
    }

    fn number(&self) -> Option<Number> {
        match self {
            Side::Seen(Seen::Int(i) | Seen::Millis(i)) => Some(Number::Int(*i)),
            Side::Seen(Seen::Text(text)) => parse_number(text),
            Side::Literal(literal) => literal.number,
            _ => None,
        }
    }

    /// The unit a length of time on the other side is best shown in.
    fn unit(&self) -> Option<Unit> {
        match self {
            Side::Literal(literal) => literal.unit,
            _ => None,
        }
    }
}

/// Whether the sides are equal: by pattern, by any of the values, as numbers or as text.
fn matches(left: &Side<'_>, right: &Side<'_>) -> bool {
    match (left, right) {
        (Side::Pattern(pattern), other) | (other, Side::Pattern(pattern)) => {
            glob(pattern, &other.text())
        }
        (Side::Any(values), other) | (other, Side::Any(values)) => values
            .iter()
            .any(|value| equal(other, &Side::Literal(value))),
        _ => equal(left, right),
    }
}

fn equal(a: &Side<'_>, b: &Side<'_>) -> bool {
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => x.compare(y) == Some(Ordering::Equal),
        _ => a.text() == b.text(),
    }
}

/// Whether `text` matches `pattern` whole, where `*` is any run of characters and `?` any one.
fn glob(pattern: &[char], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// What the placeholder sides were, as in `was 503` or `was 1 and 2`.
fn shown(left: &Side<'_>, right: &Side<'_>) -> String {
    let seen: Vec<String> = [(left, right), (right, left)]
        .into_iter()
        .filter_map(|(side, other)| match side {
            Side::Seen(seen) => Some(show(seen, other.unit())),
            _ => None,
        })
        .collect();
    format!("was {}", seen.join(" and "))
}

/// Says that `side` (a placeholder's value, since literals are checked when parsing) is not
/// a number.
fn not_a_number(side: &Side<'_>, other: &Side<'_>) -> String {
    match side {
        Side::Seen(seen) => format!("was {}, not a number", show(seen, other.unit())),
        _ => "not a number".to_string(),
    }
}

/// A seen value for a person, bounded in length, lengths of time in `unit` when given.
fn show(seen: &Seen, unit: Option<Unit>) -> String {
    match seen {
        Seen::Int(i) => i.to_string(),
        Seen::Millis(millis) => show_length_of_time(*millis, unit),
        Seen::Bool(b) => b.to_string(),
        Seen::Text(text) => bounded(text),
        Seen::Missing(Absence::NotThere) => "<missing>".to_string(),
        Seen::Missing(Absence::BodyNotJson) => "<missing>; the body is not JSON".to_string(),
        Seen::Unavailable(placeholder) => format!("{placeholder} not available"),
    }
}

/// Shows a length of time in the largest unit of the length it is compared with (`50h 0m`
/// against `72h`, `2d 2h` against `30d`), or as [`crate::alert::human_duration`] does.
fn show_length_of_time(millis: i64, unit: Option<Unit>) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let millis = millis.saturating_abs();
    let seconds = millis / 1_000;
    let text = match unit {
        None => crate::alert::human_duration(chrono::Duration::milliseconds(millis)),
        Some(Unit::Days) => format!("{}d {}h", seconds / 86_400, seconds / 3_600 % 24),
        Some(Unit::Hours) => format!("{}h {}m", seconds / 3_600, seconds / 60 % 60),
        Some(Unit::Minutes) => format!("{}m {}s", seconds / 60, seconds % 60),
        Some(Unit::Seconds) => format!("{seconds}s"),
        Some(Unit::Milliseconds) => format!("{millis}ms"),
    };
    format!("{sign}{text}")
}

/// At most [`SHOWN_VALUE_MAX_CHARS`] characters of `text`, control characters escaped.
fn bounded(text: &str) -> String {
    let mut shown = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == SHOWN_VALUE_MAX_CHARS {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}
