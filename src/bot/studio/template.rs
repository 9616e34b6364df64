//! Liquid templating as Studio does it, with the `liquid` crate.
//!
//! Studio renders an undefined variable as an empty string (`{{widgets.never_ran.parsed.x}}`
//! is ""), while `liquid` reports "Unknown variable". So the execution context is not handed to
//! `liquid` as plain values but as a [`Node`] tree whose objects answer every key: a missing
//! key is a nil that renders as "", is falsy, takes `default:`, and can itself be indexed
//! further. Objects and arrays render as JSON (`{{flow.data}}` passes the REST parameters on as
//! JSON, as Studio does). Anything else `liquid` rejects (a syntax error, an unknown filter) is a
//! render error the interpreter records against the step.
//!
//! Twilio's Liquid is more forgiving than the crate's in two ways handled here: whitespace
//! (newlines too) after the dot of a variable path, which the console leaves when a long path
//! wraps (`{% if widgets. \nname.parsed.ok %}`), is dropped before parsing (see [`prepare`]);
//! and the filters in `filters.rs` replace the standard ones where Ruby Liquid differs.
use super::filters;
use liquid::model::{ArrayView, DisplayCow, KStringCow, ScalarCow, State, Value as LValue};
use liquid::{ObjectView, ValueView};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

static PARSER: LazyLock<Option<liquid::Parser>> = LazyLock::new(|| {
    filters::register(liquid::ParserBuilder::with_stdlib())
        .build()
        .ok()
});

/// Longest template output kept, in bytes; Twilio caps a message at 1,600 characters anyway
/// and an HTTP body rendered from a template has no business being larger.
const MAX_OUTPUT: usize = 256 * 1024;

/// Renders `template` against the execution context (a JSON object).
pub fn render(template: &str, context: &Value) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(template.to_owned());
    }
    let parser = PARSER.as_ref().ok_or("the Liquid parser failed to start")?;
    let parsed = parser
        .parse(&prepare(template))
        .map_err(|e| one_line(&e.to_string()))?;
    let root = Node::from_json(context);
    let out = parsed.render(&root).map_err(|e| one_line(&e.to_string()))?;
    if out.len() > MAX_OUTPUT {
        return Err(format!("rendered text is larger than {MAX_OUTPUT} bytes"));
    }
    Ok(out)
}

/// Checks that `template` parses (used when a flow is imported).
pub fn check(template: &str) -> Result<(), String> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(());
    }
    let parser = PARSER.as_ref().ok_or("the Liquid parser failed to start")?;
    parser
        .parse(&prepare(template))
        .map(|_| ())
        .map_err(|e| one_line(&e.to_string()))
}

/// `template` as the crate should parse it: inside `{{ }}` and `{% %}` and outside quoted
/// strings, whitespace around the dots of variable paths is removed (`widgets. \n name` and
/// `widgets \n.name` become `widgets.name`), and every output ends with the filter that prints
/// objects as JSON. Text between tags is left as written.
pub fn prepare(template: &str) -> Cow<'_, str> {
    let chars: Vec<char> = template.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let starts_ident = |c: char| c.is_alphabetic() || c == '_';
    let mut out = String::with_capacity(template.len() + 32);
    let mut changed = false;
    // Inside markup: Some(true) for an output, Some(false) for a tag.
    let mut markup: Option<bool> = None;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let Some(is_output) = markup else {
            if c == '{' && matches!(next, Some('{' | '%')) {
                markup = Some(next == Some('{'));
                out.push(c);
                out.extend(next);
                i += 2;
            } else {
                out.push(c);
                i += 1;
            }
            continue;
        };
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            out.push(c);
            i += 1;
            continue;
        }
        let closes = if is_output { c == '}' } else { c == '%' } && next == Some('}');
        if closes {
            if is_output {
                // Before a `-` trim marker, which must stay next to the braces.
                let trim = out.ends_with('-');
                if trim {
                    out.pop();
                }
                out.push_str(" | ");
                out.push_str(filters::OUTPUT_FILTER);
                out.push(' ');
                if trim {
                    out.push('-');
                }
                changed = true;
            }
            markup = None;
            out.push(c);
            out.push('}');
            i += 2;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
        }
        let after_path = out
            .chars()
            .next_back()
            .is_some_and(|p| ident(p) || p == ']');
        if c == '.' && after_path {
            // `path. \n name`: skip the whitespace when a name follows it.
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j > i + 1 && chars.get(j).copied().is_some_and(starts_ident) {
                out.push('.');
                changed = true;
                i = j;
                continue;
            }
        }
        if c.is_whitespace() && after_path {
            // `path \n .name`: drop the whitespace before a dot that continues the path.
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let mut k = j + 1;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            if chars.get(j) == Some(&'.') && chars.get(k).copied().is_some_and(starts_ident) {
                changed = true;
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(template)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A context value as `liquid` sees it. Objects (and nil) answer every key.
#[derive(Debug)]
pub enum Node {
    Nil,
    Leaf(LValue),
    Array(Vec<Node>),
    Object(BTreeMap<String, Node>),
}

static NIL: Node = Node::Nil;

impl Node {
    pub fn from_json(v: &Value) -> Self {
        match v {
            Value::Null => Node::Nil,
            Value::Bool(b) => Node::Leaf(LValue::scalar(*b)),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Node::Leaf(LValue::scalar(i)),
                (None, Some(f)) => Node::Leaf(LValue::scalar(f)),
                _ => Node::Leaf(LValue::scalar(n.to_string())),
            },
            Value::String(s) => Node::Leaf(LValue::scalar(s.clone())),
            Value::Array(items) => Node::Array(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Nil => Value::Null,
            Node::Leaf(v) => leaf_json(v),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Node::Nil => String::new(),
            Node::Leaf(v) => v.render().to_string(),
            compound => compound.to_json().to_string(),
        }
    }
}

fn leaf_json(v: &LValue) -> Value {
    match v.as_scalar() {
        Some(s) => {
            if let Some(b) = s.to_bool() {
                Value::Bool(b)
            } else if let Some(i) = s.to_integer() {
                Value::from(i)
            } else if let Some(f) = s.to_float() {
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            } else {
                Value::String(s.to_kstr().to_string())
            }
        }
        None => Value::String(v.render().to_string()),
    }
}

/// Owned text shown through `DisplayCow`.
struct Text(String);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ValueView for Node {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        match self {
            Node::Leaf(v) => v.render(),
            other => DisplayCow::Owned(Box::new(Text(other.text()))),
        }
    }

    fn source(&self) -> DisplayCow<'_> {
        match self {
            Node::Leaf(v) => v.source(),
            Node::Nil => DisplayCow::Owned(Box::new(Text("nil".into()))),
            other => DisplayCow::Owned(Box::new(Text(other.text()))),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Node::Nil => "nil",
            Node::Leaf(v) => v.type_name(),
            Node::Array(_) => "array",
            Node::Object(_) => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        let empty = match self {
            Node::Nil => true,
            Node::Leaf(v) => return v.query_state(state),
            Node::Array(items) => items.is_empty(),
            Node::Object(map) => map.is_empty(),
        };
        match state {
            State::Truthy => !matches!(self, Node::Nil),
            State::DefaultValue | State::Empty | State::Blank => empty,
        }
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        match self {
            Node::Leaf(v) => v.to_kstr(),
            other => KStringCow::from_string(other.text()),
        }
    }

    fn to_value(&self) -> LValue {
        match self {
            Node::Nil => LValue::Nil,
            Node::Leaf(v) => v.to_value(),
            Node::Array(items) => LValue::Array(items.iter().map(ValueView::to_value).collect()),
            // `liquid` copies what a path names before using it; objects stay objects so that
            // tags and filters (`for`, `map`) can look inside. Printing one whole gives JSON
            // through the filter every output ends with (see [`prepare`]).
            Node::Object(map) => LValue::Object(
                map.iter()
                    .map(|(k, v)| (k.clone().into(), v.to_value()))
                    .collect(),
            ),
        }
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Node::Leaf(v) => v.as_scalar(),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Node::Array(_) => Some(self),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            // Nil answers as an empty object so `a.b.c` on a missing `a` is nil, not an error.
            Node::Object(_) | Node::Nil => Some(self),
            _ => None,
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Node::Nil)
    }
}

impl ObjectView for Node {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Node::Object(map) => map.len() as i64,
            _ => 0,
        }
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        match self {
            Node::Object(map) => Box::new(map.keys().map(|k| KStringCow::from_ref(k.as_str()))),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Node::Object(map) => Box::new(map.values().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        match self {
            Node::Object(map) => Box::new(
                map.iter()
                    .map(|(k, v)| (KStringCow::from_ref(k.as_str()), v as &dyn ValueView)),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn contains_key(&self, _index: &str) -> bool {
        true
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        match self {
            Node::Object(map) => Some(map.get(index).unwrap_or(&NIL)),
            _ => Some(&NIL),
        }
    }
}

impl ArrayView for Node {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Node::Array(items) => items.len() as i64,
            _ => 0,
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Node::Array(items) => Box::new(items.iter().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn contains_key(&self, index: i64) -> bool {
        ArrayView::get(self, index).is_some_and(|v| !v.is_nil())
    }

    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        let Node::Array(items) = self else {
            return Some(&NIL);
        };
        let len = items.len() as i64;
        let i = if index < 0 { len + index } else { index };
        Some(
            usize::try_from(i)
                .ok()
                .and_then(|i| items.as_slice().get(i))
                .unwrap_or(&NIL),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "trigger": {"message": {"Body": "Hello", "From": "whatsapp:+15550001111"}},
            "widgets": {"get": {"parsed": {"name": "Ana", "reservations": [{"id": "r1"}, {"id": "r2"}]}, "status_code": 200}},
            "flow": {"data": {"a": 1, "b": "x"}, "variables": {"count": "0"}}
        })
    }

    #[test]
    fn variables_render() {
        assert_eq!(
            render("Hi {{trigger.message.Body}}!", &ctx()).as_deref(),
            Ok("Hi Hello!")
        );
        assert_eq!(
            render("{{widgets.get.parsed.name}}", &ctx()).as_deref(),
            Ok("Ana")
        );
        assert_eq!(
            render("{{widgets.get.parsed.reservations[1].id}}", &ctx()).as_deref(),
            Ok("r2")
        );
        assert_eq!(
            render("{{widgets.get.parsed.reservations.first.id}}", &ctx()).as_deref(),
            Ok("r1")
        );
        assert_eq!(
            render("{{widgets.get.parsed.reservations.size}}", &ctx()).as_deref(),
            Ok("2")
        );
        assert_eq!(
            render("{{widgets.get.status_code}}", &ctx()).as_deref(),
            Ok("200")
        );
    }

    #[test]
    fn undefined_variables_are_empty_like_studio() {
        assert_eq!(
            render("[{{widgets.nope.parsed.x.y}}]", &ctx()).as_deref(),
            Ok("[]")
        );
        assert_eq!(render("[{{nothing}}]", &ctx()).as_deref(), Ok("[]"));
        assert_eq!(
            render("[{{widgets.get.parsed.reservations[7].id}}]", &ctx()).as_deref(),
            Ok("[]")
        );
        assert_eq!(
            render("{{ flow.variables.missing | default: 'none' }}", &ctx()).as_deref(),
            Ok("none")
        );
    }

    #[test]
    fn filters_and_tags_seen_in_real_flows() {
        assert_eq!(
            render("{{trigger.message.From | remove: 'whatsapp:'}}", &ctx()).as_deref(),
            Ok("+15550001111")
        );
        let counter = "{%- if flow.variables.count -%}\n  {{flow.variables.count | plus: 1}}\n{%- else -%}\n  0\n{%- endif -%}";
        assert_eq!(render(counter, &ctx()).as_deref(), Ok("1"));
        assert_eq!(
            render(counter, &json!({"flow": {"variables": {}}})).as_deref(),
            Ok("0")
        );
        assert_eq!(
            render("{% assign n = 5 | minus: 1 %}{{n}}", &ctx()).as_deref(),
            Ok("4")
        );
    }

    #[test]
    fn objects_render_as_json() {
        assert_eq!(
            render("{{flow.data}}", &ctx()).as_deref(),
            Ok(r#"{"a":1,"b":"x"}"#)
        );
    }

    #[test]
    fn broken_templates_are_errors_not_text() {
        assert!(render("{{ unclosed", &ctx()).is_err());
        assert!(render("{{ x | no_such_filter }}", &ctx()).is_err());
        assert!(render("{% if %}", &ctx()).is_err());
        assert!(check("{% endif %}").is_err());
        assert!(check("plain text").is_ok());
    }
}
