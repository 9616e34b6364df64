//! Liquid filters that behave as Twilio Studio's (Shopify's Liquid, in Ruby) where the `liquid`
//! crate's differ. Registered over the standard library's filters of the same name.
//!
//! * Arithmetic (`plus`, `minus`, `times`, `divided_by`, `modulo`, `at_least`, `at_most`):
//!   Ruby Liquid turns any operand into a number first: nil, `true`/`false`, objects and text
//!   that does not start with a number count as 0, `"12abc"` as 12, `"1.5"` as 1.5. So
//!   `{{flow.variables.n | plus: 1}}` with `n` unset is `1`, where the crate stops with
//!   "Number expected". Integers stay integers (`divided_by` on two integers rounds down, as in
//!   Ruby); a division by zero is still an error, as it is in Studio.
//! * `date` also reads ISO-8601 timestamps as HTTP widgets return them
//!   (`2024-07-01T14:00:00+02:00`, `...Z`, fractions, a bare `2024-07-01`), keeping the
//!   timestamp's own offset, and `"now"`/`"today"` (UTC here; there is no time-zone database).
//!   Input that is no date comes out unchanged, as in Ruby Liquid.
//! * `url_encode` is Ruby's `CGI.escape`: a space is `+`, letters, digits and `_.-~` stay.
//! * `studio_output` is not Twilio's: `template.rs` ends every `{{ }}` with it so that an
//!   object printed whole comes out as JSON, as Studio prints `{{flow.data}}`, while inside
//!   tags and filters objects stay objects (`for`, `map`, `where` need them).
use liquid_core::model::{DateTime, Value, ValueView};
use liquid_core::parser::{FilterArguments, FilterReflection, ParameterReflection};
use liquid_core::{Error, Expression, Filter, ParseFilter, Result, Runtime};
use std::fmt;

/// Adds the filters of this module to `builder`, replacing the standard ones.
pub fn register(mut builder: liquid::ParserBuilder) -> liquid::ParserBuilder {
    for op in [
        Op::Plus,
        Op::Minus,
        Op::Times,
        Op::DividedBy,
        Op::Modulo,
        Op::AtLeast,
        Op::AtMost,
    ] {
        builder = builder.filter(Arith(op));
    }
    builder.filter(Date).filter(UrlEncode).filter(StudioOutput)
}

/// The name `template.rs` appends to every output.
pub const OUTPUT_FILTER: &str = "studio_output";

/// A Liquid value as JSON; object keys sorted, so the text is stable.
pub fn to_json(v: &dyn ValueView) -> serde_json::Value {
    use serde_json::Value as J;
    if v.is_nil() {
        return J::Null;
    }
    if let Some(object) = v.as_object() {
        let mut entries: Vec<(String, J)> = object
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        return J::Object(entries.into_iter().collect());
    }
    if let Some(array) = v.as_array() {
        return J::Array(array.values().map(to_json).collect());
    }
    let Some(s) = v.as_scalar() else {
        return J::String(v.to_kstr().to_string());
    };
    if let Some(b) = s.to_bool() {
        return J::Bool(b);
    }
    match s.type_name() {
        "whole number" => s.to_integer().map_or(J::Null, J::from),
        "fractional number" => s
            .to_float()
            .and_then(serde_json::Number::from_f64)
            .map_or(J::Null, J::Number),
        _ => J::String(s.to_kstr().to_string()),
    }
}

#[derive(Clone)]
struct StudioOutput;

impl FilterReflection for StudioOutput {
    fn name(&self) -> &str {
        OUTPUT_FILTER
    }
    fn description(&self) -> &str {
        "Prints an object as JSON; anything else unchanged."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for StudioOutput {
    fn parse(&self, _arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        Ok(Box::new(StudioOutputFilter))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct StudioOutputFilter;

impl fmt::Display for StudioOutputFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OUTPUT_FILTER)
    }
}

impl Filter for StudioOutputFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        if input.as_object().is_some() && !input.is_nil() {
            return Ok(Value::scalar(to_json(input).to_string()));
        }
        Ok(input.to_value())
    }
}

static OPERAND: [ParameterReflection; 1] = [ParameterReflection {
    name: "operand",
    description: "The other number.",
    is_optional: false,
}];

static FORMAT: [ParameterReflection; 1] = [ParameterReflection {
    name: "format",
    description: "The strftime format.",
    is_optional: false,
}];

/// One positional argument, as every filter here takes (none for `url_encode`).
fn one_argument(name: &str, mut args: FilterArguments) -> Result<Expression> {
    let first = args
        .positional
        .next()
        .ok_or_else(|| Error::with_msg(format!("{name}: an argument is required")))?;
    if args.positional.next().is_some() || args.keyword.next().is_some() {
        return Err(Error::with_msg(format!("{name}: too many arguments")));
    }
    Ok(first)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Plus,
    Minus,
    Times,
    DividedBy,
    Modulo,
    AtLeast,
    AtMost,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Plus => "plus",
            Op::Minus => "minus",
            Op::Times => "times",
            Op::DividedBy => "divided_by",
            Op::Modulo => "modulo",
            Op::AtLeast => "at_least",
            Op::AtMost => "at_most",
        }
    }
}

#[derive(Clone)]
struct Arith(Op);

impl FilterReflection for Arith {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn description(&self) -> &str {
        "Arithmetic with nil and text read as numbers, as in Ruby Liquid."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &OPERAND
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Arith {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        Ok(Box::new(ArithFilter {
            op: self.0,
            operand: one_argument(self.0.name(), arguments)?,
        }))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct ArithFilter {
    op: Op,
    operand: Expression,
}

impl fmt::Display for ArithFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op.name(), self.operand)
    }
}

impl Filter for ArithFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let operand = self.operand.evaluate(runtime)?;
        let (a, b) = (to_number(input), to_number(operand.as_view()));
        let zero = || Error::with_msg(format!("{}: divided by 0", self.op.name()));
        Ok(match (a, b) {
            (Num::Int(a), Num::Int(b)) => Value::scalar(match self.op {
                Op::Plus => a.wrapping_add(b),
                Op::Minus => a.wrapping_sub(b),
                Op::Times => a.wrapping_mul(b),
                Op::DividedBy if b == 0 => return Err(zero()),
                // Ruby's Integer#/ and #% round towards negative infinity.
                Op::DividedBy => {
                    let q = a.wrapping_div(b);
                    if a.wrapping_rem(b) != 0 && (a < 0) != (b < 0) {
                        q - 1
                    } else {
                        q
                    }
                }
                Op::Modulo if b == 0 => return Err(zero()),
                Op::Modulo => {
                    let r = a.wrapping_rem(b);
                    if r != 0 && (r < 0) != (b < 0) {
                        r + b
                    } else {
                        r
                    }
                }
                Op::AtLeast => a.max(b),
                Op::AtMost => a.min(b),
            }),
            (a, b) => {
                let (a, b) = (a.float(), b.float());
                let out = match self.op {
                    Op::Plus => a + b,
                    Op::Minus => a - b,
                    Op::Times => a * b,
                    Op::DividedBy | Op::Modulo if b == 0.0 => return Err(zero()),
                    Op::DividedBy => a / b,
                    Op::Modulo => a - b * (a / b).floor(),
                    Op::AtLeast => a.max(b),
                    Op::AtMost => a.min(b),
                };
                Value::scalar(out)
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Ruby Liquid's `Utils.to_number`.
fn to_number(v: &dyn ValueView) -> Num {
    let Some(s) = v.as_scalar() else {
        return Num::Int(0);
    };
    if s.to_bool().is_some() {
        return Num::Int(0);
    }
    if s.type_name() == "string" {
        return text_to_number(&s.to_kstr());
    }
    if let Some(i) = s.to_integer() {
        return Num::Int(i);
    }
    s.to_float()
        .filter(|f| f.is_finite())
        .map_or(Num::Int(0), Num::Float)
}

/// `/\A-?\d+\.\d+\z/` is a decimal; anything else is Ruby's `String#to_i` (leading
/// whitespace, a sign, then digits; no digits is 0).
fn text_to_number(text: &str) -> Num {
    let t = text.trim();
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    if let Some((int, frac)) = unsigned.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(int) && digits(frac) {
            if let Ok(f) = t.parse::<f64>() {
                return Num::Float(f);
            }
        }
    }
    let start = text.trim_start();
    let (negative, rest) = match start.as_bytes().first() {
        Some(b'-') => (true, &start[1..]),
        Some(b'+') => (false, &start[1..]),
        _ => (false, start),
    };
    let mut n: i64 = 0;
    for b in rest.bytes() {
        match b {
            b'0'..=b'9' => n = n.saturating_mul(10).saturating_add(i64::from(b - b'0')),
            b'_' => {}
            _ => break,
        }
    }
    Num::Int(if negative { -n } else { n })
}

#[derive(Clone)]
struct Date;

impl FilterReflection for Date {
    fn name(&self) -> &str {
        "date"
    }
    fn description(&self) -> &str {
        "Formats a timestamp (ISO-8601 included) with strftime."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &FORMAT
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Date {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        Ok(Box::new(DateFilter {
            format: one_argument("date", arguments)?,
        }))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct DateFilter {
    format: Expression,
}

impl fmt::Display for DateFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date: {}", self.format)
    }
}

impl Filter for DateFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let format = self.format.evaluate(runtime)?.to_kstr().into_owned();
        let Some(scalar) = input.as_scalar() else {
            return Ok(input.to_value());
        };
        let parsed = match scalar.to_date_time() {
            Some(d) => Some(d),
            None => iso8601(scalar.to_kstr().trim()),
        };
        match parsed {
            Some(date) if !format.is_empty() => date
                .format(format.as_str())
                .map(Value::scalar)
                .map_err(|_| Error::with_msg(format!("date: invalid format {format:?}"))),
            _ => Ok(input.to_value()),
        }
    }
}

/// An ISO-8601 / RFC 3339 timestamp, keeping its offset (UTC when it has none).
fn iso8601(text: &str) -> Option<DateTime> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    use time::macros::format_description;
    use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            let no_zone = [
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
                format_description!("[year]-[month]-[day]T[hour]:[minute]"),
                format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
                format_description!("[year]-[month]-[day] [hour]:[minute]"),
            ];
            no_zone
                .iter()
                .find_map(|f| PrimitiveDateTime::parse(text, f).ok())
                .or_else(|| {
                    time::Date::parse(text, format_description!("[year]-[month]-[day]"))
                        .ok()
                        .map(|d| d.midnight())
                })
                .map(|p| p.assume_offset(UtcOffset::UTC))
        })?;
    let mut date = DateTime::default();
    *date = at;
    Some(date)
}

#[derive(Clone)]
struct UrlEncode;

impl FilterReflection for UrlEncode {
    fn name(&self) -> &str {
        "url_encode"
    }
    fn description(&self) -> &str {
        "Encodes text for a URL query, a space as +."
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for UrlEncode {
    fn parse(&self, mut arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        if arguments.positional.next().is_some() || arguments.keyword.next().is_some() {
            return Err(Error::with_msg("url_encode: takes no arguments"));
        }
        Ok(Box::new(UrlEncodeFilter))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct UrlEncodeFilter;

impl fmt::Display for UrlEncodeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("url_encode")
    }
}

impl Filter for UrlEncodeFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        if input.is_nil() {
            return Ok(Value::Nil);
        }
        let text = input.to_kstr();
        let mut out = String::with_capacity(text.len());
        for b in text.as_bytes() {
            match b {
                b' ' => out.push('+'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                    out.push(char::from(*b))
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        Ok(Value::scalar(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_as_ruby_reads_it() {
        assert_eq!(text_to_number(""), Num::Int(0));
        assert_eq!(text_to_number("abc"), Num::Int(0));
        assert_eq!(text_to_number(" 12abc"), Num::Int(12));
        assert_eq!(text_to_number("-3"), Num::Int(-3));
        assert_eq!(text_to_number("1.5"), Num::Float(1.5));
        assert_eq!(text_to_number("1.5x"), Num::Int(1));
        assert_eq!(text_to_number("1_000"), Num::Int(1000));
    }
}
