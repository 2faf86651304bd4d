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
                "expected a single comparison, but found a second operator, {}",
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
            sides_match(&left, &right) == (self.operator == Operator::Eq)
        } else {
            let (a, b) = match (left.number(), right.number()) {
                (Some(a), Some(b)) => (a, b),
                (None, _) => return Err(self.failure(&not_a_number(&left, &right))),
                (_, None) => return Err(self.failure(&not_a_number(&right, &left))),
            };
            self.operator.holds(a.compare(b))
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

    /// The operator that `bytes` start with, if any.
    fn at_start_of(bytes: &[u8]) -> Option<Operator> {
        Operator::LONGEST_FIRST
            .into_iter()
            .find(|op| bytes.starts_with(op.as_str().as_bytes()))
    }

    /// Whether a comparison that came out as `ordering` (none for numbers that do not
    /// compare) satisfies the operator.
    fn holds(self, ordering: Option<Ordering>) -> bool {
        let Some(ordering) = ordering else {
            return self == Operator::Ne;
        };
        match self {
            Operator::Eq => ordering.is_eq(),
            Operator::Ne => ordering.is_ne(),
            Operator::Lt => ordering.is_lt(),
            Operator::Le => ordering.is_le(),
            Operator::Gt => ordering.is_gt(),
            Operator::Ge => ordering.is_ge(),
        }
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
            (Kind::Text, Some(literal)) if !operator.is_equality() && literal.number.is_none() => {
                return Err(error(format!(
                    "expected a number or a length of time such as 72h to compare with {op}, not `{}`",
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
                return Err(error(format!("expected a key after `.` in `{side}`")));
            }
            if key.contains(']') {
                return Err(error(format!("unbalanced brackets in `{side}`")));
            }
            steps.push(Step::Key(key.to_string()));
            rest = &after_dot[end..];
        } else if let Some(after_bracket) = rest.strip_prefix('[') {
            let Some(end) = after_bracket.find(']') else {
                return Err(error(format!("unbalanced brackets in `{side}`")));
            };
            let index = &after_bracket[..end];
            let parsed = index
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| index.parse::<usize>().ok())
                .flatten();
            let Some(index) = parsed else {
                return Err(error(format!(
                    "expected an array index such as [0] in `{side}`, not [{index}]"
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
                "unexpected `{rest}` in `{side}`; expected `.key` or `[index]`"
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
    let mut enclosed = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            _ => {
                let operator = Operator::at_start_of(&bytes[i..]);
                match operator {
                    Some(operator) if depth == 0 => return Ok((i, operator)),
                    Some(_) => enclosed = true,
                    None => lone_equals |= depth == 0 && b == b'=',
                }
            }
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
    } else if enclosed {
        " outside brackets and parentheses"
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
                let Some(operator) = Operator::at_start_of(&bytes[i..]) else {
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
                    if tail.starts_with(')') {
                        return Err(error(format!("unbalanced parentheses in {name}(...)")));
                    }
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
        let available =
            |value: Option<Seen>| value.unwrap_or_else(|| Seen::Unavailable(source.placeholder()));
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
                let left =
                    details
                        .certificate
                        .as_ref()
                        .zip(observation.now)
                        .map(|(certificate, now)| {
                            Seen::Millis((certificate.expires_at - now).num_milliseconds())
                        });
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
fn sides_match(left: &Side<'_>, right: &Side<'_>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Certificate, CheckDetails, DnsFacts};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
    }

    fn certificate(expires_at: DateTime<Utc>) -> Certificate {
        Certificate {
            expires_at,
            not_before: t0() - Duration::days(30),
            issuer: "CN=Test CA".to_string(),
            subject: "CN=example.com".to_string(),
            sans: vec!["example.com".to_string()],
            fingerprint: "00".repeat(32),
        }
    }

    const BODY: &str = r#"{
        "status": "UP",
        "count": 3,
        "ratio": 0.5,
        "ok": true,
        "nothing": null,
        "version": "1.10",
        "name": "upwatch",
        "café": "oui",
        "data": {
            "items": [{"id": 7, "tags": ["a", "b"]}, {"id": 8}],
            "empty": [],
            "meta": {"a": 1}
        },
        "grid": [[1, 2], [3]]
    }"#;

    /// An HTTPS check that went well: status 200 in 150 ms, a JSON body, two headers and a
    /// certificate that expires in 50 hours.
    fn observation() -> Observation {
        Observation {
            connected: true,
            status_code: Some(200),
            response_time_ms: 150,
            body: Some(BODY.as_bytes().to_vec()),
            headers: [
                ("content-type", "application/json; charset=utf-8"),
                ("x-request-id", "abc-123"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            now: Some(t0()),
            details: CheckDetails {
                ip: Some("93.184.216.34".parse().unwrap()),
                certificate: Some(certificate(t0() + Duration::hours(50))),
                dns: None,
                icmp: None,
            },
        }
    }

    fn with_body(body: &[u8]) -> Observation {
        Observation {
            body: Some(body.to_vec()),
            ..observation()
        }
    }

    /// A DNS check that got two A records.
    fn dns_observation() -> Observation {
        Observation {
            connected: true,
            response_time_ms: 12,
            body: Some(b"93.184.216.34\n93.184.216.35".to_vec()),
            details: CheckDetails {
                dns: Some(DnsFacts {
                    rcode: "NOERROR".to_string(),
                    answers: vec!["93.184.216.34".to_string(), "93.184.216.35".to_string()],
                }),
                ..CheckDetails::default()
            },
            ..Observation::default()
        }
    }

    /// A check whose connection was refused: nothing but the time it took.
    fn refused() -> Observation {
        Observation {
            connected: false,
            response_time_ms: 3,
            ..Observation::default()
        }
    }

    fn parse(text: &str) -> Condition {
        Condition::parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
    }

    fn judge(text: &str, observation: &Observation) -> Result<(), String> {
        parse(text).evaluate(observation)
    }

    fn assert_holds(observation: &Observation, conditions: &[&str]) {
        for text in conditions {
            assert_eq!(judge(text, observation), Ok(()), "{text}");
        }
    }

    /// Each condition fails with exactly the message given.
    fn assert_fails(observation: &Observation, cases: &[(&str, &str)]) {
        for (text, message) in cases {
            assert_eq!(judge(text, observation), Err(message.to_string()), "{text}");
        }
    }

    #[test]
    fn every_operator_compares_numbers() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[STATUS] == 200",
                "[STATUS] != 201",
                "[STATUS] < 201",
                "[STATUS] <= 200",
                "[STATUS] <= 201",
                "[STATUS] > 199",
                "[STATUS] >= 200",
                "[STATUS] >= 199",
                "[RESPONSE_TIME] < 500",
                "[RESPONSE_TIME] >= 150",
                "[RESPONSE_TIME] <= 150.5",
                "[RESPONSE_TIME] > 149.9",
                "[STATUS]==200",
                "[STATUS]<=200",
                "[STATUS]>=200",
                "[STATUS]!=404",
            ],
        );
        assert_fails(
            &observation,
            &[
                ("[STATUS] == 201", "[STATUS] == 201 (was 200)"),
                ("[STATUS] != 200", "[STATUS] != 200 (was 200)"),
                ("[STATUS] < 200", "[STATUS] < 200 (was 200)"),
                ("[STATUS] <= 199", "[STATUS] <= 199 (was 200)"),
                ("[STATUS] > 200", "[STATUS] > 200 (was 200)"),
                ("[STATUS] >= 201", "[STATUS] >= 201 (was 200)"),
                ("[RESPONSE_TIME] < 100", "[RESPONSE_TIME] < 100 (was 150)"),
                (
                    "[RESPONSE_TIME] > 149.9e1",
                    "[RESPONSE_TIME] > 149.9e1 (was 150)",
                ),
            ],
        );
    }

    #[test]
    fn a_literal_may_stand_on_the_left() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "200 == [STATUS]",
                "100 < [RESPONSE_TIME]",
                "UP == [BODY].status",
            ],
        );
        assert_fails(
            &observation,
            &[
                ("500 < [RESPONSE_TIME]", "500 < [RESPONSE_TIME] (was 150)"),
                ("DOWN == [BODY].status", "DOWN == [BODY].status (was UP)"),
            ],
        );
    }

    #[test]
    fn both_sides_may_be_placeholders() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[RESPONSE_TIME] < [STATUS]",
                "[BODY].data.items[0].id < [BODY].data.items[1].id",
                "len([BODY].data.items) == [BODY].grid[0][1]",
            ],
        );
        assert_fails(
            &observation,
            &[
                (
                    "[BODY].count == [BODY].data.items[0].id",
                    "[BODY].count == [BODY].data.items[0].id (was 3 and 7)",
                ),
                (
                    "[BODY].count == [BODY].missing",
                    "[BODY].count == [BODY].missing (was 3 and <missing>)",
                ),
            ],
        );
    }

    #[test]
    fn every_placeholder_reads_its_value() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[STATUS] == 200",
                "[RESPONSE_TIME] == 150",
                "[BODY] == pat(*\"status\": \"UP\"*)",
                "[BODY].status == UP",
                "[HEADER].content-type == application/json; charset=utf-8",
                "[HEADER].x-request-id == abc-123",
                "[CERTIFICATE_EXPIRATION] > 48h",
                "[CONNECTED] == true",
                "[IP] == 93.184.216.34",
            ],
        );
        let dns = dns_observation();
        assert_holds(
            &dns,
            &[
                "[DNS_RCODE] == NOERROR",
                "[DNS_RCODE] != NXDOMAIN",
                "[BODY] == pat(*93.184.216.35*)",
                "[BODY] == pat(93.184.216.34?93.184.216.35)",
                "[CONNECTED] == true",
                "[RESPONSE_TIME] < 50",
            ],
        );
        assert_fails(
            &dns,
            &[
                (
                    "[DNS_RCODE] == NXDOMAIN",
                    "[DNS_RCODE] == NXDOMAIN (was NOERROR)",
                ),
                (
                    "[BODY] == 1.1.1.1",
                    "[BODY] == 1.1.1.1 (was 93.184.216.34\\n93.184.216.35)",
                ),
            ],
        );
        assert_fails(
            &refused(),
            &[("[CONNECTED] == true", "[CONNECTED] == true (was false)")],
        );
        assert_holds(&refused(), &["[CONNECTED] == false", "[CONNECTED] != true"]);
    }

    #[test]
    fn placeholder_names_are_case_insensitive() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[status] == 200",
                "[Body].status == UP",
                "[response_time] < 500",
                "LEN([BODY].data.items) == 2",
                "Has([BODY].ok) == true",
            ],
        );
        // A path keeps its case: JSON keys are case-sensitive.
        assert_fails(
            &observation,
            &[("[BODY].STATUS == UP", "[BODY].STATUS == UP (was <missing>)")],
        );
    }

    #[test]
    fn a_missing_placeholder_says_it_was_not_available() {
        let refused = refused();
        assert_fails(
            &refused,
            &[
                (
                    "[STATUS] == 200",
                    "[STATUS] == 200 ([STATUS] was not available)",
                ),
                // Even `!=` fails: nothing was seen to differ.
                (
                    "[STATUS] != 500",
                    "[STATUS] != 500 ([STATUS] was not available)",
                ),
                ("[BODY] == OK", "[BODY] == OK ([BODY] was not available)"),
                (
                    "[BODY].status == UP",
                    "[BODY].status == UP ([BODY] was not available)",
                ),
                (
                    "len([BODY]) > 0",
                    "len([BODY]) > 0 ([BODY] was not available)",
                ),
                (
                    "[IP] == 10.0.0.1",
                    "[IP] == 10.0.0.1 ([IP] was not available)",
                ),
                ("len([IP]) > 0", "len([IP]) > 0 ([IP] was not available)"),
                (
                    "[DNS_RCODE] == NOERROR",
                    "[DNS_RCODE] == NOERROR ([DNS_RCODE] was not available)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 72h",
                    "[CERTIFICATE_EXPIRATION] > 72h ([CERTIFICATE_EXPIRATION] was not available)",
                ),
                (
                    "[STATUS] == [RESPONSE_TIME]",
                    "[STATUS] == [RESPONSE_TIME] ([STATUS] was not available)",
                ),
                (
                    "[RESPONSE_TIME] == [STATUS]",
                    "[RESPONSE_TIME] == [STATUS] ([STATUS] was not available)",
                ),
            ],
        );
        // A certificate without the time of judging cannot say how long it has left.
        let no_clock = Observation {
            now: None,
            ..observation()
        };
        assert_fails(
            &no_clock,
            &[(
                "[CERTIFICATE_EXPIRATION] > 1h",
                "[CERTIFICATE_EXPIRATION] > 1h ([CERTIFICATE_EXPIRATION] was not available)",
            )],
        );
        // has() is false rather than failing.
        assert_holds(
            &refused,
            &[
                "has([STATUS]) == false",
                "has([BODY]) == false",
                "has([BODY].status) == false",
                "has([IP]) == false",
                "has([DNS_RCODE]) == false",
                "has([CERTIFICATE_EXPIRATION]) == false",
                "has([HEADER].content-type) == false",
                "has([CONNECTED]) == true",
                "has([RESPONSE_TIME]) == true",
            ],
        );
    }

    #[test]
    fn json_paths_walk_objects_and_arrays() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[BODY].status == UP",
                "[BODY].data.items[0].id == 7",
                "[BODY].data.items[1].id == 8",
                "[BODY].data.items[0].tags[1] == b",
                "[BODY].grid[0][1] == 2",
                "[BODY].grid[1][0] == 3",
                "[BODY].café == oui",
                // Numbers, booleans and null as text; objects and arrays as compact JSON.
                "[BODY].count == 3",
                "[BODY].ratio == 0.5",
                "[BODY].ok == true",
                "[BODY].nothing == null",
                "[BODY].data.meta == {\"a\":1}",
                "[BODY].data.items[0].tags == [\"a\",\"b\"]",
                "[BODY].data.empty == []",
                "[BODY].grid[1] == [3]",
            ],
        );
        assert_fails(
            &observation,
            &[
                ("[BODY].status == DOWN", "[BODY].status == DOWN (was UP)"),
                ("[BODY].missing == x", "[BODY].missing == x (was <missing>)"),
                // A value that is not there differs from nothing: `!=` fails too.
                ("[BODY].missing != x", "[BODY].missing != x (was <missing>)"),
                (
                    "[BODY].data.items[2].id == 9",
                    "[BODY].data.items[2].id == 9 (was <missing>)",
                ),
                (
                    "[BODY].data.items[0].name == x",
                    "[BODY].data.items[0].name == x (was <missing>)",
                ),
                // Walking into a string or indexing an object finds nothing.
                (
                    "[BODY].status.x == 1",
                    "[BODY].status.x == 1 (was <missing>)",
                ),
                ("[BODY].data[0] == 1", "[BODY].data[0] == 1 (was <missing>)"),
                ("[BODY][0] == 1", "[BODY][0] == 1 (was <missing>)"),
                (
                    "len([BODY].missing) > 0",
                    "len([BODY].missing) > 0 (was <missing>)",
                ),
                (
                    "[BODY].data.meta == {\"a\": 1}",
                    "[BODY].data.meta == {\"a\": 1} (was {\"a\":1})",
                ),
            ],
        );
    }

    #[test]
    fn a_body_that_is_an_array_is_indexed_at_the_root() {
        let observation = with_body(br#"[{"x": "first"}, {"x": "second", "y": [10, 20]}]"#);
        assert_holds(
            &observation,
            &[
                "[BODY][0].x == first",
                "[BODY][1].x == second",
                "[BODY][1].y[1] == 20",
                "len([BODY]) == 2",
                "len([BODY][1].y) == 2",
                "has([BODY][1].y) == true",
                "has([BODY][2]) == false",
            ],
        );
        assert_fails(
            &observation,
            &[(
                "[BODY][5].x == first",
                "[BODY][5].x == first (was <missing>)",
            )],
        );
    }

    #[test]
    fn a_body_that_is_not_json_has_no_paths() {
        for body in [
            &b"<html><title>Up</title></html>"[..],
            b"",
            b"{\"cut\": \"off",
            b"\xff\xfe",
        ] {
            let observation = with_body(body);
            assert_fails(
                &observation,
                &[
                    (
                        "[BODY].status == UP",
                        "[BODY].status == UP (was <missing>; the body is not JSON)",
                    ),
                    (
                        "len([BODY].items) > 0",
                        "len([BODY].items) > 0 (was <missing>; the body is not JSON)",
                    ),
                ],
            );
            assert_holds(&observation, &["has([BODY].status) == false"]);
        }
        let html = with_body(b"  <html><title>Up</title></html>\n");
        assert_holds(
            &html,
            &[
                "[BODY] == pat(*<title>Up</title>*)",
                "[BODY] == <html><title>Up</title></html>",
                "len([BODY]) == 30",
                "has([BODY]) == true",
            ],
        );
        // Bytes that are not UTF-8 do not stop the body being judged.
        assert_holds(&with_body(b"ok \xff"), &["[BODY] == pat(ok *)"]);
    }

    #[test]
    fn len_counts_items_keys_and_characters() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "len([BODY].data.items) == 2",
                "len([BODY].data.items) > 0",
                "len([BODY].data.empty) == 0",
                "len([BODY].data.meta) == 1",
                "len([BODY].data) == 3",
                "len([BODY].name) == 7",
                "len([BODY].café) == 3",
                "len([BODY].count) == 1",
                // The root object's keys.
                "len([BODY]) == 10",
                "len([HEADER].x-request-id) == 7",
                "len([IP]) == 13",
                "len( [BODY].name ) == 7",
            ],
        );
        assert_fails(
            &observation,
            &[
                (
                    "len([BODY].data.empty) > 0",
                    "len([BODY].data.empty) > 0 (was 0)",
                ),
                (
                    "len([HEADER].x-missing) > 0",
                    "len([HEADER].x-missing) > 0 (was <missing>)",
                ),
            ],
        );
        assert_holds(&with_body(b"\"h\xc3\xa9llo\""), &["len([BODY]) == 5"]);
        assert_holds(&with_body(b"plain text"), &["len([BODY]) == 10"]);
        assert_holds(&dns_observation(), &["len([DNS_RCODE]) == 7"]);
    }

    #[test]
    fn has_says_whether_there_is_a_value() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "has([BODY].status) == true",
                "has([BODY].data.items[1]) == true",
                "has([BODY].data.items[2]) == false",
                "has([BODY].missing) == false",
                "has([BODY].missing) != true",
                // A key whose value is null is there.
                "has([BODY].nothing) == true",
                "has([BODY]) == true",
                "has([HEADER].Content-Type) == true",
                "has([HEADER].x-missing) == false",
                "has([STATUS]) == true",
                "has([IP]) == true",
                "has([CERTIFICATE_EXPIRATION]) == true",
            ],
        );
        assert_fails(
            &observation,
            &[(
                "has([BODY].missing) == true",
                "has([BODY].missing) == true (was false)",
            )],
        );
        assert_holds(&with_body(b"  \n"), &["has([BODY]) == false"]);
    }

    #[test]
    fn patterns_match_the_whole_value() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[BODY].name == pat(up*)",
                "[BODY].name == pat(*watch)",
                "[BODY].name == pat(up?atch)",
                "[BODY].name == pat(*)",
                "[BODY].name == pat(u*w*h)",
                "[BODY].name != pat(down*)",
                "[BODY].name != pat(up)",
                "[BODY].café == pat(o?i)",
                "[STATUS] == pat(2??)",
                "[IP] == pat(93.184.*)",
                "[HEADER].content-type == pat(application/json*)",
                "[CONNECTED] == pat(t*)",
                "pat(2*) == [STATUS]",
                "[BODY].data.meta == pat({*})",
            ],
        );
        assert_fails(
            &observation,
            &[
                ("[STATUS] == pat(5*)", "[STATUS] == pat(5*) (was 200)"),
                (
                    "[BODY].name == pat(up)",
                    "[BODY].name == pat(up) (was upwatch)",
                ),
                (
                    "[BODY].name != pat(up*)",
                    "[BODY].name != pat(up*) (was upwatch)",
                ),
                (
                    "[BODY].missing == pat(*)",
                    "[BODY].missing == pat(*) (was <missing>)",
                ),
            ],
        );
    }

    #[test]
    fn glob_knows_star_and_question_mark() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a", "a", true),
            ("a", "ab", false),
            ("ab", "a", false),
            ("?", "", false),
            ("?", "é", true),
            ("??", "é", false),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "axxbc", false),
            ("a*b*c", "axbyc", true),
            ("a*b*c", "abcbc", true),
            ("a*b*c", "acb", false),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("**", "x", true),
            ("x**", "x", true),
            ("[a]", "[a]", true),
            ("[a]", "a", false),
            ("1.2.*", "1.2.3.4", true),
            ("1.2.*", "1.3.3.4", false),
        ];
        for (pattern, text, expected) in cases {
            let pattern: Vec<char> = pattern.chars().collect();
            assert_eq!(glob(&pattern, text), *expected, "{pattern:?} on {text:?}");
        }
    }

    #[test]
    fn any_is_equal_to_one_of_its_values() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[STATUS] == any(200, 201, 204)",
                "[STATUS] == any(204,200)",
                "[STATUS] != any(500, 503)",
                "[BODY].status == any(UP, DEGRADED)",
                "[BODY].ratio == any(0.50, 1)",
                "[BODY].status == any(UP)",
                "any(UP, DEGRADED) == [BODY].status",
                "[IP] == any(1.1.1.1, 93.184.216.34)",
            ],
        );
        assert_fails(
            &observation,
            &[
                (
                    "[STATUS] == any(201, 204)",
                    "[STATUS] == any(201, 204) (was 200)",
                ),
                (
                    "[STATUS] != any(200, 204)",
                    "[STATUS] != any(200, 204) (was 200)",
                ),
                (
                    "[BODY].status == any(up, down)",
                    "[BODY].status == any(up, down) (was UP)",
                ),
            ],
        );
    }

    #[test]
    fn numbers_compare_as_numbers_and_the_rest_as_text() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[BODY].count == 03",
                "[BODY].count == 3.0",
                "[BODY].count == +3",
                "[BODY].count > 2",
                "[BODY].count > -1",
                "[BODY].count < 1e1",
                "[BODY].ratio < 1",
                "[BODY].ratio >= 0.5",
                "[BODY].ratio == .5",
                // "1.10" is a number, so it equals 1.1.
                "[BODY].version == 1.1",
                "[BODY].name == upwatch",
                "[BODY].name != Upwatch",
                "[BODY].ok == true",
                "[BODY].ok != false",
                "[STATUS] != 200.5",
            ],
        );
        assert_fails(
            &observation,
            &[
                ("[BODY].count > 3", "[BODY].count > 3 (was 3)"),
                ("[BODY].ratio > 0.5", "[BODY].ratio > 0.5 (was 0.5)"),
                (
                    "[BODY].name == Upwatch",
                    "[BODY].name == Upwatch (was upwatch)",
                ),
                // The ordering operators need numbers; text fails with a reason.
                (
                    "[BODY].name > 2",
                    "[BODY].name > 2 (was upwatch, not a number)",
                ),
                ("[BODY].ok <= 1", "[BODY].ok <= 1 (was true, not a number)"),
                (
                    "[BODY].data.meta >= 1",
                    "[BODY].data.meta >= 1 (was {\"a\":1}, not a number)",
                ),
                (
                    "3 < [BODY].name",
                    "3 < [BODY].name (was upwatch, not a number)",
                ),
                ("[BODY].missing < 1", "[BODY].missing < 1 (was <missing>)"),
            ],
        );
        // Text that merely looks like a number in words is not one.
        assert_fails(
            &with_body(br#"{"x": "inf", "y": "NaN"}"#),
            &[
                ("[BODY].x > 1", "[BODY].x > 1 (was inf, not a number)"),
                ("[BODY].y < 1", "[BODY].y < 1 (was NaN, not a number)"),
            ],
        );
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_number("200"), Some(Number::Int(200)));
        assert_eq!(parse_number("-3"), Some(Number::Int(-3)));
        assert_eq!(parse_number("0.5"), Some(Number::Float(0.5)));
        assert_eq!(parse_number("1e3"), Some(Number::Float(1000.0)));
        assert_eq!(
            parse_number("99999999999999999999"),
            Some(Number::Float(1e20))
        );
        for text in [
            "", "inf", "NaN", "infinity", "1e999", "1.2.3", "12a", " 1", "0x10", "-",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn lengths_of_time_read_as_milliseconds() {
        let cases: &[(&str, i64, Unit)] = &[
            ("72h", 72 * 3_600_000, Unit::Hours),
            ("30m", 30 * 60_000, Unit::Minutes),
            ("7d", 7 * 86_400_000, Unit::Days),
            ("48h30m", 48 * 3_600_000 + 30 * 60_000, Unit::Hours),
            ("1d12h", 36 * 3_600_000, Unit::Days),
            ("1m30s", 90_000, Unit::Minutes),
            ("90s", 90_000, Unit::Seconds),
            ("500ms", 500, Unit::Milliseconds),
            ("1s500ms", 1_500, Unit::Seconds),
            ("0h", 0, Unit::Hours),
        ];
        for (text, millis, unit) in cases {
            assert_eq!(parse_length_of_time(text), Some((*millis, *unit)), "{text}");
        }
        for text in [
            "",
            "h",
            "72",
            "1.5h",
            "72x",
            "-1h",
            "72 h",
            "h72",
            "7d ",
            "99999999999999999d",
        ] {
            assert_eq!(parse_length_of_time(text), None, "{text:?}");
        }
    }

    #[test]
    fn certificate_expiration_compares_with_lengths_of_time() {
        // The certificate has 50 hours left.
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[CERTIFICATE_EXPIRATION] > 48h",
                "[CERTIFICATE_EXPIRATION] > 48h30m",
                "[CERTIFICATE_EXPIRATION] < 72h",
                "[CERTIFICATE_EXPIRATION] > 2d",
                "[CERTIFICATE_EXPIRATION] < 3d",
                "[CERTIFICATE_EXPIRATION] > 1d23h59m",
                "[CERTIFICATE_EXPIRATION] >= 3000m",
                "[CERTIFICATE_EXPIRATION] == 50h",
                "[CERTIFICATE_EXPIRATION] == 180000000",
                "[CERTIFICATE_EXPIRATION] > 179999999",
                "[CERTIFICATE_EXPIRATION] > 1000s",
            ],
        );
        assert_fails(
            &observation,
            &[
                (
                    "[CERTIFICATE_EXPIRATION] > 72h",
                    "[CERTIFICATE_EXPIRATION] > 72h (was 50h 0m)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 30d",
                    "[CERTIFICATE_EXPIRATION] > 30d (was 2d 2h)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 3000m",
                    "[CERTIFICATE_EXPIRATION] > 3000m (was 3000m 0s)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 60h30m",
                    "[CERTIFICATE_EXPIRATION] > 60h30m (was 50h 0m)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 259200000",
                    "[CERTIFICATE_EXPIRATION] > 259200000 (was 2d 2h)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 200000s",
                    "[CERTIFICATE_EXPIRATION] > 200000s (was 180000s)",
                ),
            ],
        );
        // An expired certificate has negative time left.
        let expired = Observation {
            details: CheckDetails {
                certificate: Some(certificate(t0() - Duration::minutes(300))),
                ..observation.details.clone()
            },
            ..observation.clone()
        };
        assert_fails(
            &expired,
            &[
                (
                    "[CERTIFICATE_EXPIRATION] > 0h",
                    "[CERTIFICATE_EXPIRATION] > 0h (was -5h 0m)",
                ),
                (
                    "[CERTIFICATE_EXPIRATION] > 0",
                    "[CERTIFICATE_EXPIRATION] > 0 (was -5h 0m)",
                ),
            ],
        );
    }

    #[test]
    fn response_time_compares_with_lengths_of_time() {
        assert_holds(
            &observation(),
            &[
                "[RESPONSE_TIME] < 1s",
                "[RESPONSE_TIME] < 151ms",
                "[RESPONSE_TIME] > 149ms",
            ],
        );
        assert_fails(
            &observation(),
            &[(
                "[RESPONSE_TIME] < 100ms",
                "[RESPONSE_TIME] < 100ms (was 150)",
            )],
        );
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let observation = observation();
        assert_holds(
            &observation,
            &[
                "[HEADER].content-type == pat(application/json*)",
                "[HEADER].Content-Type == pat(application/json*)",
                "[HEADER].CONTENT-TYPE == application/json; charset=utf-8",
                "[header].X-Request-Id == abc-123",
            ],
        );
        assert_fails(
            &observation,
            &[
                (
                    "[HEADER].X-Request-Id == ABC-123",
                    "[HEADER].X-Request-Id == ABC-123 (was abc-123)",
                ),
                (
                    "[HEADER].x-missing == 1",
                    "[HEADER].x-missing == 1 (was <missing>)",
                ),
            ],
        );
    }

    #[test]
    fn failure_messages_show_what_was_seen() {
        let mut down = with_body(br#"{"status": "DOWN", "items": []}"#);
        down.status_code = Some(503);
        assert_fails(
            &down,
            &[
                ("[BODY].status == UP", "[BODY].status == UP (was DOWN)"),
                ("[STATUS] == 200", "[STATUS] == 200 (was 503)"),
                ("len([BODY].items) > 0", "len([BODY].items) > 0 (was 0)"),
                ("  [STATUS]   ==   200  ", "[STATUS]   ==   200 (was 503)"),
            ],
        );
        assert_fails(
            &refused(),
            &[("[CONNECTED] == true", "[CONNECTED] == true (was false)")],
        );
        assert_fails(
            &observation(),
            &[(
                "[CERTIFICATE_EXPIRATION] > 72h",
                "[CERTIFICATE_EXPIRATION] > 72h (was 50h 0m)",
            )],
        );
    }

    #[test]
    fn shown_values_are_bounded() {
        let long = "x".repeat(500);
        let observation = with_body(format!(r#"{{"long": "{long}"}}"#).as_bytes());
        let message = judge("[BODY].long == short", &observation).unwrap_err();
        let shown = message
            .strip_prefix("[BODY].long == short (was ")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap();
        assert_eq!(shown, format!("{}…", "x".repeat(SHOWN_VALUE_MAX_CHARS)));
        // A value just at the bound is shown whole.
        let exact = "y".repeat(SHOWN_VALUE_MAX_CHARS);
        let observation = with_body(format!(r#"{{"v": "{exact}"}}"#).as_bytes());
        assert_eq!(
            judge("[BODY].v == z", &observation),
            Err(format!("[BODY].v == z (was {exact})"))
        );
        // Control characters are escaped, so a message stays on one line.
        assert_eq!(bounded("a\nb\tc"), "a\\nb\\tc");
    }

    #[test]
    fn lengths_of_time_are_shown_in_the_unit_they_are_compared_with() {
        let millis = (50 * 3_600 + 7 * 60 + 5) * 1_000;
        assert_eq!(show_length_of_time(millis, Some(Unit::Days)), "2d 2h");
        assert_eq!(show_length_of_time(millis, Some(Unit::Hours)), "50h 7m");
        assert_eq!(show_length_of_time(millis, Some(Unit::Minutes)), "3007m 5s");
        assert_eq!(show_length_of_time(millis, Some(Unit::Seconds)), "180425s");
        assert_eq!(
            show_length_of_time(millis, Some(Unit::Milliseconds)),
            "180425000ms"
        );
        assert_eq!(show_length_of_time(millis, None), "2d 2h");
        assert_eq!(show_length_of_time(-90_000, None), "-1m 30s");
        assert_eq!(show_length_of_time(0, Some(Unit::Hours)), "0h 0m");
    }

    #[test]
    fn parse_errors_say_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            ("", "the condition is empty"),
            ("   ", "the condition is empty"),
            (
                "[STATUS] 200",
                "expected an operator (==, !=, <, <=, >, >=) between two values",
            ),
            ("[STATUS] = 200", "`=` alone is not one"),
            ("== 200", "expected a value before =="),
            ("[STATUS] ==", "expected a value after =="),
            ("[STATUS] <", "expected a value after <"),
            ("len([BODY].items > 0", "unbalanced parentheses in len(...)"),
            (
                "len([BODY].items)) > 0",
                "unbalanced parentheses in len(...)",
            ),
            ("has([BODY].x == true", "unbalanced parentheses in has(...)"),
            ("[BODY] == pat(abc", "unbalanced parentheses in pat(...)"),
            (
                "[STATUS] == any(200, 201",
                "unbalanced parentheses in any(...)",
            ),
            ("(([STATUS] == 200", "unbalanced parentheses"),
            ("[BODY].a[0 == 1", "unbalanced brackets"),
            ("[BODY].a] == 1", "unbalanced brackets in `[BODY].a]`"),
            (
                "[BODY].a[0 == 1]",
                "expected an operator (==, !=, <, <=, >, >=) between two values outside brackets",
            ),
            ("len([BODY].a) x == 1", "unexpected `x` after len(...)"),
            (
                "[STATUS] < pat(2*)",
                "pat(...) may only be compared with == or !=",
            ),
            (
                "[BODY] >= pat(2*)",
                "pat(...) may only be compared with == or !=",
            ),
            (
                "pat(2*) > [STATUS]",
                "pat(...) may only be compared with == or !=",
            ),
            (
                "[STATUS] >= any(200, 201)",
                "any(...) may only be compared with == or !=",
            ),
            (
                "[FOO] == 1",
                "unknown placeholder [FOO]; expected one of [STATUS], [RESPONSE_TIME], [BODY], \
                 [HEADER], [CERTIFICATE_EXPIRATION], [DNS_RCODE], [CONNECTED], [IP]",
            ),
            ("[STATUS] == [NOPE]", "unknown placeholder [NOPE]"),
            (
                "len([DOMAIN_EXPIRATION]) > 1",
                "unknown placeholder [DOMAIN_EXPIRATION]",
            ),
            (
                "[HEADER] == x",
                "expected a header name after [HEADER], as in [HEADER].content-type",
            ),
            ("[HEADER]. == x", "expected a header name after [HEADER]"),
            ("[HEADER]x == x", "expected a header name after [HEADER]"),
            ("[STATUS].code == 200", "unexpected `.code` after [STATUS]"),
            ("[CONNECTED]x == true", "unexpected `x` after [CONNECTED]"),
            ("[BODY]x == 1", "expected `.key` or `[index]` after [BODY]"),
            ("[BODY]. == 1", "expected a key after `.` in `[BODY].`"),
            (
                "[BODY].a..b == 1",
                "expected a key after `.` in `[BODY].a..b`",
            ),
            (
                "[BODY].items[x] == 1",
                "expected an array index such as [0]",
            ),
            (
                "[BODY].items[-1] == 1",
                "expected an array index such as [0]",
            ),
            ("[BODY].items[] == 1", "expected an array index such as [0]"),
            (
                "[BODY].items[0]x == 1",
                "unexpected `x` in `[BODY].items[0]x`",
            ),
            (
                "len(abc) == 1",
                "len(...) takes a placeholder such as [BODY].items, not `abc`",
            ),
            ("len() == 1", "len(...) takes a placeholder"),
            ("has(200) == true", "has(...) takes a placeholder"),
            ("len(len([BODY])) == 1", "len(...) takes a placeholder"),
            ("len([STATUS]) == 3", "len(...) takes [BODY]"),
            ("len([CONNECTED]) == 4", "len(...) takes [BODY]"),
            ("foo([BODY]) == 1", "unknown function foo(...)"),
            ("[STATUS] == lenn([BODY])", "unknown function lenn(...)"),
            ("[BODY] == pat()", "pat() needs a pattern"),
            (
                "[STATUS] == any()",
                "any(...) needs values separated by commas",
            ),
            (
                "[STATUS] == any(200,,201)",
                "any(...) needs values separated by commas",
            ),
            (
                "[STATUS] == any(200,)",
                "any(...) needs values separated by commas",
            ),
            (
                "STATUS == 200",
                "expected a placeholder such as [STATUS] or [BODY].status on at least one side",
            ),
            ("pat(2*) == any(1)", "expected a placeholder"),
            ("[STATUS] == 200 == 201", "expected a single comparison"),
            (
                "[RESPONSE_TIME] < 500 && [STATUS] == 200",
                "expected a single comparison",
            ),
            (
                "[CONNECTED] > 1",
                "[CONNECTED] is true or false, so it may only be compared with == or !=",
            ),
            ("has([BODY].a) < 1", "is true or false"),
            (
                "[CONNECTED] == yes",
                "expected true or false to compare with [CONNECTED], not `yes`",
            ),
            ("has([BODY].a) == TRUE", "expected true or false"),
            (
                "[STATUS] == abc",
                "expected a number to compare with [STATUS], not `abc`",
            ),
            (
                "[STATUS] == 2xx",
                "expected a number to compare with [STATUS]",
            ),
            (
                "len([BODY]) > many",
                "expected a number to compare with len([BODY])",
            ),
            (
                "[CERTIFICATE_EXPIRATION] > soon",
                "expected a length of time such as 72h",
            ),
            ("[CERTIFICATE_EXPIRATION] > 1.5h", "not `1.5h`"),
            (
                "[BODY].name > abc",
                "expected a number or a length of time such as 72h to compare with >, not `abc`",
            ),
        ];
        for (text, expected) in cases {
            match Condition::parse(text) {
                Ok(condition) => panic!("{text:?} parsed as {condition:?}"),
                Err(e) => {
                    assert!(e.0.contains(expected), "{text:?}: {e:?} lacks {expected:?}");
                    assert!(!e.0.ends_with('.'), "{text:?}: {e:?} ends with a period");
                    assert!(
                        e.0.starts_with(|c: char| !c.is_uppercase()),
                        "{text:?}: {e:?} starts upper-case"
                    );
                    assert_eq!(e.to_string(), e.0);
                }
            }
        }
    }

    #[test]
    fn unusual_but_valid_conditions_parse() {
        for text in [
            "[BODY] == <html>",
            "[HEADER].content-type == text/html; charset=utf-8",
            "[BODY].message == a = b",
            "[BODY].msg == :-)",
            "[BODY].msg == [1, 2]",
            "[BODY].emoji == 🙂",
            "[BODY].név == érték",
            "[BODY].a == x<y",
            "[BODY].a b == c",
        ] {
            let condition = parse(text);
            assert_eq!(condition.to_string(), text);
        }
        assert_holds(
            &with_body(r#"{"a b": "c", "msg": "[1, 2]", "név": "érték", "m": "a = b"}"#.as_bytes()),
            &[
                "[BODY].a b == c",
                "[BODY].msg == [1, 2]",
                "[BODY].név == érték",
                "[BODY].m == a = b",
            ],
        );
    }

    #[test]
    fn placeholders_lists_what_both_sides_read() {
        use Placeholder::*;
        let cases: &[(&str, &[Placeholder], bool)] = &[
            ("[STATUS] == 200", &[Status], false),
            ("200 == [STATUS]", &[Status], false),
            ("[RESPONSE_TIME] < 500", &[ResponseTime], false),
            ("[BODY] == pat(*ok*)", &[Body], true),
            ("[BODY].a == [HEADER].x", &[Body, Header], true),
            ("[HEADER].x == [BODY].a", &[Header, Body], true),
            ("[BODY].a == [BODY].b", &[Body], true),
            ("len([BODY].items) > 0", &[Body], true),
            ("has([BODY]) == true", &[Body], true),
            ("[BODY][0].x == 1", &[Body], true),
            ("[HEADER].content-type == pat(text/*)", &[Header], false),
            ("[IP] == any(10.0.0.1, 10.0.0.2)", &[Ip], false),
            (
                "[CERTIFICATE_EXPIRATION] > 72h",
                &[CertificateExpiration],
                false,
            ),
            ("[DNS_RCODE] == NOERROR", &[DnsRcode], false),
            ("[CONNECTED] == true", &[Connected], false),
            ("[RESPONSE_TIME] < [STATUS]", &[ResponseTime, Status], false),
        ];
        for (text, placeholders, needs_body) in cases {
            let condition = parse(text);
            assert_eq!(condition.placeholders(), *placeholders, "{text}");
            assert_eq!(condition.needs_body(), *needs_body, "{text}");
        }
    }

    #[test]
    fn parsing_keeps_the_text_and_a_structured_form() {
        let condition = parse("  [BODY].data.items[0].id == 7 ");
        assert_eq!(condition.to_string(), "[BODY].data.items[0].id == 7");
        assert_eq!(
            condition.left,
            Operand::Read(Source::BodyPath(vec![
                Step::Key("data".to_string()),
                Step::Key("items".to_string()),
                Step::Index(0),
                Step::Key("id".to_string()),
            ]))
        );
        assert_eq!(condition.operator, Operator::Eq);
        assert_eq!(
            condition.right,
            Operand::Literal(Literal {
                text: "7".to_string(),
                number: Some(Number::Int(7)),
                unit: None,
            })
        );
        assert_eq!(
            parse("[HEADER].Content-Type == x").left,
            Operand::Read(Source::Header("content-type".to_string()))
        );
        assert_eq!(
            parse("[CERTIFICATE_EXPIRATION] > 7d").right,
            Operand::Literal(Literal {
                text: "7d".to_string(),
                number: Some(Number::Int(7 * 86_400_000)),
                unit: Some(Unit::Days),
            })
        );
        let cloned = condition.clone();
        assert_eq!(cloned, condition);
        assert_ne!(parse("[STATUS] == 200"), parse("[STATUS] == 201"));
        // Judging the same parsed condition many times gives the same answer.
        let observation = observation();
        for _ in 0..3 {
            assert_eq!(condition.evaluate(&observation), Ok(()));
        }
    }

    #[test]
    fn every_operator_is_found_longest_first() {
        for (text, operator) in [
            ("[STATUS] == 1", Operator::Eq),
            ("[STATUS] != 1", Operator::Ne),
            ("[STATUS] < 1", Operator::Lt),
            ("[STATUS] <= 1", Operator::Le),
            ("[STATUS] > 1", Operator::Gt),
            ("[STATUS] >= 1", Operator::Ge),
            ("[STATUS]>=1", Operator::Ge),
            ("len([BODY].a) <= 1", Operator::Le),
        ] {
            assert_eq!(parse(text).operator, operator, "{text}");
        }
    }

    #[test]
    fn evaluate_all_reports_the_first_failure() {
        let conditions: Vec<Condition> = [
            "[STATUS] == 200",
            "[BODY].status == DOWN",
            "[RESPONSE_TIME] < 100",
        ]
        .into_iter()
        .map(parse)
        .collect();
        assert_eq!(
            evaluate_all(&conditions, &observation()),
            Err("[BODY].status == DOWN (was UP)".to_string())
        );
        assert_eq!(evaluate_all(&conditions[..1], &observation()), Ok(()));
        assert_eq!(evaluate_all(&[], &refused()), Ok(()));
    }

    #[test]
    fn the_error_type_reads_as_its_message() {
        let e = Condition::parse("[HEADER] == x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected a header name after [HEADER], as in [HEADER].content-type"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("[HEADER]"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever is written, parsing answers and judging answers: neither panics, and a
            /// condition that parses shows itself as written.
            #[test]
            fn any_text_parses_or_is_refused_without_panicking(
                text in r"[\[\]().,*?=!<> a-zA-Z0-9_éх🙂-]{0,40}",
                body in r"[\[\]{}:,\x22 a-z0-9.é-]{0,40}",
            ) {
                if let Ok(condition) = Condition::parse(&text) {
                    prop_assert_eq!(condition.to_string(), text.trim());
                    for observation in [observation(), with_body(body.as_bytes()), refused()] {
                        let _ = condition.evaluate(&observation);
                    }
                }
            }

            /// The parts of the language put together at random parse, and judge without
            /// panicking.
            #[test]
            fn generated_conditions_parse_and_judge(
                left in prop::sample::select(vec![
                    "[STATUS]", "[RESPONSE_TIME]", "[BODY]", "[BODY].data.items[0].id",
                    "[BODY][0]", "[HEADER].content-type", "[CERTIFICATE_EXPIRATION]",
                    "[IP]", "[DNS_RCODE]", "len([BODY].data.items)", "len([BODY])",
                ]),
                operator in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
                right in prop::sample::select(vec!["1", "0.5", "72h", "7d", "48h30m", "-3", "1e3"]),
                body in r"[\[\]{}:,\x22 a-z0-9.é-]{0,40}",
            ) {
                let text = format!("{left} {operator} {right}");
                let condition = Condition::parse(&text);
                prop_assert!(condition.is_ok(), "{} was refused: {:?}", text, condition);
                let condition = condition.unwrap();
                for observation in [observation(), with_body(body.as_bytes()), refused()] {
                    if let Err(message) = condition.evaluate(&observation) {
                        prop_assert!(message.starts_with(&text), "{}", message);
                    }
                }
            }
        }
    }
}
