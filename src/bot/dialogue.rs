//! Text-channel dialogue primitives shared by the engines: numbered options, polar (yes/no)
//! questions and forms.
//!
//! SMS and WhatsApp have no buttons, so a choice is a numbered list and the answer is typed.
//! People type the number ("2", "2.", "#2"), the option itself ("Parking"), or the start of it
//! ("park"); all three are accepted, compared without case, accents or surrounding punctuation.
//! A yes/no question accepts the numbers of its two options and the language's synonyms, and an
//! unclear answer is reported as unclear (`None`) so the caller asks again instead of taking it
//! as "no" (the mistake Inbenta's connector makes). Forms ask their fields one at a time,
//! re-ask on an invalid answer, offer to leave after `errorRetries` failures in a row, and can
//! always be left with an abandonment keyword, so nobody gets stuck in one.
//!
//! Everything here is pure: state goes in and out as serializable values the engine keeps in
//! its turn state.
use super::labels::Labels;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Lowercase, accents folded, punctuation turned into spaces, whitespace collapsed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = fold(c);
        if c.is_alphanumeric() || c == '\'' || c == '+' || c == '@' {
            out.push(c);
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Folds the accented Latin letters of the supported languages to their base letter.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        '’' | '‘' | '`' => '\'',
        other => other,
    }
}

/// A numbered list of options the person answers by typing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    pub labels: Vec<String>,
}

impl Options {
    pub fn new(labels: Vec<String>) -> Self {
        Self { labels }
    }

    /// `intro`, one line per option, and "Reply 1, 2 or 3."
    pub fn render(&self, intro: &str, labels: &Labels) -> String {
        let mut text = String::new();
        if !intro.trim().is_empty() {
            text.push_str(intro.trim_end());
            text.push('\n');
        }
        for (i, label) in self.labels.iter().enumerate() {
            text.push_str(&format!("{}. {}\n", i + 1, label));
        }
        text.push_str(&labels.fill(
            "reply_with",
            &[("options", &labels.numbers(self.labels.len()))],
        ));
        text
    }

    /// The 0-based option the reply picks: its number, its label, or a unique prefix of a label.
    pub fn pick(&self, reply: &str) -> Option<usize> {
        let reply = normalize(reply);
        if reply.is_empty() {
            return None;
        }
        if let Some(n) = number(&reply) {
            return (1..=self.labels.len()).contains(&n).then(|| n - 1);
        }
        let normalized: Vec<String> = self.labels.iter().map(|l| normalize(l)).collect();
        if let Some(i) = normalized.iter().position(|l| *l == reply) {
            return Some(i);
        }
        let mut prefixed = normalized
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with(&reply));
        match (prefixed.next(), prefixed.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }
}

/// "2", "#2", "2." (already normalized, so punctuation is gone) as a number.
fn number(normalized: &str) -> Option<usize> {
    let digits = normalized.trim_start_matches('#').trim();
    if digits.is_empty() || digits.len() > 3 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A yes/no question rendered as numbered options ("1. Yes", "2. No").
pub fn polar_question(question: &str, labels: &Labels) -> String {
    polar_options(labels).render(question, labels)
}

fn polar_options(labels: &Labels) -> Options {
    Options::new(vec![labels.get("yes"), labels.get("no")])
}

/// The answer to a yes/no question: `Some(true)` for yes, `Some(false)` for no, `None` when it
/// is unclear (ask again; never take it as no).
pub fn polar(reply: &str, labels: &Labels) -> Option<bool> {
    if let Some(i) = polar_options(labels).pick(reply) {
        return Some(i == 0);
    }
    let reply = normalize(reply);
    let yes = labels
        .list("yes_synonyms")
        .iter()
        .any(|s| normalize(s) == reply);
    let no = labels
        .list("no_synonyms")
        .iter()
        .any(|s| normalize(s) == reply);
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Does the reply ask to leave the current form ("cancel", "exit", ...)?
pub fn is_abandon_keyword(reply: &str, labels: &Labels) -> bool {
    let reply = normalize(reply);
    !reply.is_empty()
        && labels
            .list("form_abandon_keywords")
            .iter()
            .any(|k| normalize(k) == reply)
}

/// What a form field accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    #[default]
    Text,
    Number,
    Email,
    Phone,
    /// `YYYY-MM-DD`, `DD/MM/YYYY` or `DD-MM-YYYY`; stored as `YYYY-MM-DD`.
    Date,
    /// A yes/no answer; stored as a boolean.
    Polar,
    /// One of `options`, answered like a numbered list; stored as the option's label.
    Choice,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    pub name: String,
    /// The question asked for this field.
    pub question: String,
    #[serde(default, rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub options: Vec<String>,
    /// A regular expression the whole (trimmed) answer must match.
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Said before re-asking after an invalid answer (default: the `form_invalid` label).
    #[serde(default)]
    pub error: Option<String>,
}

fn default_retries() -> u32 {
    3
}

fn default_true() -> bool {
    true
}

/// A form: fields asked in order, with Inbenta's `errorRetries` and `allowUserToAbandonForm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormSpec {
    pub fields: Vec<FieldSpec>,
    /// Failed answers to one field before the person is asked whether to leave the form.
    #[serde(default = "default_retries")]
    pub error_retries: u32,
    /// Whether that offer is made; the abandonment keywords work either way.
    #[serde(default = "default_true")]
    pub allow_user_to_abandon_form: bool,
    /// Said when the form is complete; `$field` placeholders are filled with the answers.
    #[serde(default)]
    pub done: Option<String>,
}

/// Where a person is in a form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FormState {
    pub field: usize,
    /// Consecutive invalid answers to the current field.
    pub errors: u32,
    /// The last question was "do you want to leave the form?".
    pub confirming_abandon: bool,
    pub values: Map<String, Value>,
}

/// The outcome of one answer to a form.
#[derive(Debug, Clone, PartialEq)]
pub enum FormStep {
    /// Say this and wait for the next answer.
    Ask(String),
    /// Every field is answered; say the text.
    Done {
        values: Map<String, Value>,
        text: String,
    },
    /// The person left the form; say the text.
    Abandoned(String),
}

impl FormSpec {
    /// Checks the specification (used when a bot is configured). Names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.fields.is_empty() {
            return Err("a form needs at least one field".into());
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.name.trim().is_empty() || f.question.trim().is_empty() {
                return Err(format!("fields[{i}] needs a name and a question"));
            }
            if f.kind == FieldKind::Choice && f.options.is_empty() {
                return Err(format!("field \"{}\" is a choice without options", f.name));
            }
            if let Some(p) = &f.pattern {
                regex::Regex::new(p).map_err(|e| format!("field \"{}\" pattern: {e}", f.name))?;
            }
        }
        Ok(())
    }

    /// The first question.
    pub fn start(&self, labels: &Labels) -> (FormState, String) {
        (FormState::default(), self.question(0, labels))
    }

    fn question(&self, index: usize, labels: &Labels) -> String {
        match self.fields.get(index) {
            Some(f) if f.kind == FieldKind::Choice => {
                Options::new(f.options.clone()).render(&f.question, labels)
            }
            Some(f) if f.kind == FieldKind::Polar => polar_question(&f.question, labels),
            Some(f) => f.question.clone(),
            None => String::new(),
        }
    }

    /// Takes one answer.
    pub fn answer(&self, state: &mut FormState, reply: &str, labels: &Labels) -> FormStep {
        if is_abandon_keyword(reply, labels) {
            return FormStep::Abandoned(labels.get("form_abandoned"));
        }
        if state.confirming_abandon {
            return match polar(reply, labels) {
                Some(true) => FormStep::Abandoned(labels.get("form_abandoned")),
                Some(false) => {
                    state.confirming_abandon = false;
                    state.errors = 0;
                    FormStep::Ask(self.question(state.field, labels))
                }
                None => {
                    // Unclear twice as often as the field itself may fail: leave rather than
                    // keep the person in a loop they evidently do not follow.
                    state.errors += 1;
                    if state.errors >= self.error_retries.max(1) * 2 {
                        FormStep::Abandoned(labels.get("form_abandoned"))
                    } else {
                        FormStep::Ask(format!(
                            "{}\n{}",
                            labels.get("not_understood"),
                            polar_question(&labels.get("form_ask_abandon"), labels)
                        ))
                    }
                }
            };
        }
        let Some(field) = self.fields.get(state.field) else {
            return FormStep::Done {
                values: state.values.clone(),
                text: self.done_text(&state.values, labels),
            };
        };
        match check(field, reply, labels) {
            Some(value) => {
                state.values.insert(field.name.clone(), value);
                state.field += 1;
                state.errors = 0;
                if state.field >= self.fields.len() {
                    FormStep::Done {
                        values: state.values.clone(),
                        text: self.done_text(&state.values, labels),
                    }
                } else {
                    FormStep::Ask(self.question(state.field, labels))
                }
            }
            None => {
                state.errors += 1;
                if self.allow_user_to_abandon_form && state.errors >= self.error_retries.max(1) {
                    state.confirming_abandon = true;
                    state.errors = 0;
                    return FormStep::Ask(polar_question(&labels.get("form_ask_abandon"), labels));
                }
                let error = field
                    .error
                    .clone()
                    .unwrap_or_else(|| labels.get("form_invalid"));
                FormStep::Ask(format!("{error}\n{}", self.question(state.field, labels)))
            }
        }
    }

    fn done_text(&self, values: &Map<String, Value>, labels: &Labels) -> String {
        let Some(template) = &self.done else {
            return labels.get("form_completed");
        };
        let mut names: Vec<&String> = values.keys().collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut text = template.clone();
        for name in names {
            let shown = match &values[name] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            text = text.replace(&format!("${name}"), &shown);
        }
        text
    }
}

/// The stored value of a valid answer, or `None` when the answer is invalid.
fn check(field: &FieldSpec, reply: &str, labels: &Labels) -> Option<Value> {
    let text = reply.trim();
    if text.is_empty() {
        return None;
    }
    let chars = text.chars().count();
    if field.min_length.is_some_and(|min| chars < min)
        || field.max_length.is_some_and(|max| chars > max)
    {
        return None;
    }
    if let Some(pattern) = &field.pattern {
        let anchored = format!("^(?:{pattern})$");
        if !regex::Regex::new(&anchored).is_ok_and(|re| re.is_match(text)) {
            return None;
        }
    }
    match field.kind {
        FieldKind::Text => Some(Value::String(text.to_owned())),
        FieldKind::Number => {
            let n: f64 = text
                .replace(',', ".")
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())?;
            if field.min.is_some_and(|min| n < min) || field.max.is_some_and(|max| n > max) {
                return None;
            }
            serde_json::Number::from_f64(n).map(Value::Number)
        }
        FieldKind::Email => {
            let (user, host) = text.split_once('@')?;
            let ok = !user.is_empty()
                && host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
                && !text.contains(char::is_whitespace);
            ok.then(|| Value::String(text.to_owned()))
        }
        FieldKind::Phone => {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            let allowed = text
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            (allowed && (7..=15).contains(&digits.len())).then(|| {
                let plus = if text.starts_with('+') { "+" } else { "" };
                Value::String(format!("{plus}{digits}"))
            })
        }
        FieldKind::Date => {
            parse_date(text).map(|(y, m, d)| Value::String(format!("{y:04}-{m:02}-{d:02}")))
        }
        FieldKind::Polar => polar(text, labels).map(Value::Bool),
        FieldKind::Choice => Options::new(field.options.clone())
            .pick(text)
            .map(|i| Value::String(field.options[i].clone())),
    }
}

/// `YYYY-MM-DD`, `YYYY/MM/DD`, `DD/MM/YYYY`, `DD-MM-YYYY`, `DD.MM.YYYY` as (year, month, day).
pub fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let parts: Vec<&str> = text.trim().split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 {
        (*a, *b, *c)
    } else {
        (*c, *b, *a)
    };
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1000..=9999).contains(&y) && (1..=days).contains(&d)).then_some((y, m, d))
}

#[cfg(test)]
#[path = "dialogue_tests.rs"]
mod tests;
