//! Inline Markdown within one line: code spans, links and images, autolinks, `<br>`, entities,
//! escapes and emphasis. Emphasis markers are paired the way CommonMark pairs them (simplified
//! flanking rules), so `snake_case`, `2 * 3` and `_` inside URLs are left alone.
use super::Style;
use std::collections::HashMap;

/// Inline rendering of one line: code spans, links, autolinks, emphasis, escapes, entities.
pub(super) struct Inline<'a> {
    pub(super) refs: &'a HashMap<String, String>,
    pub(super) style: Style,
}

/// A piece of a line: literal text, or a run of emphasis markers waiting to be paired.
#[derive(Debug)]
enum Piece {
    Text(String),
    Delim {
        ch: char,
        len: usize,
        open: bool,
        close: bool,
    },
}

impl Inline<'_> {
    pub(super) fn render(&self, line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut pieces: Vec<Piece> = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(text)));
                }
            };
            match c {
                '\\' if chars.get(i + 1).is_some_and(char::is_ascii_punctuation) => {
                    text.push(chars[i + 1]);
                    i += 2;
                }
                '`' => {
                    let run = run_len(&chars, i, '`');
                    match find_run(&chars, i + run, '`', run) {
                        Some(end) => {
                            let code: String = chars[i + run..end].iter().collect();
                            let code = code.trim();
                            match self.style {
                                Style::WhatsApp => text.push_str(&format!("`{code}`")),
                                Style::Plain => text.push_str(code),
                            }
                            i = end + run;
                        }
                        None => {
                            text.extend(&chars[i..i + run]);
                            i += run;
                        }
                    }
                }
                '!' if chars.get(i + 1) == Some(&'[') => match self.link(&chars, i + 1) {
                    Some((rendered, next)) => {
                        text.push_str(&rendered);
                        i = next;
                    }
                    None => {
                        text.push('!');
                        i += 1;
                    }
                },
                '[' => match self.link(&chars, i) {
                    Some((rendered, next)) => {
                        text.push_str(&rendered);
                        i = next;
                    }
                    None => {
                        text.push('[');
                        i += 1;
                    }
                },
                '<' => match angle(&chars, i) {
                    Some((inner, next)) => {
                        text.push_str(&inner);
                        i = next;
                    }
                    None => {
                        text.push('<');
                        i += 1;
                    }
                },
                '&' => match entity(&chars, i) {
                    Some((decoded, next)) => {
                        text.push(decoded);
                        i = next;
                    }
                    None => {
                        text.push('&');
                        i += 1;
                    }
                },
                'h' if starts_url(&chars, i) => {
                    // Bare URLs are copied untouched: `_` and `*` in them are not emphasis.
                    while i < chars.len() && !chars[i].is_whitespace() {
                        text.push(chars[i]);
                        i += 1;
                    }
                }
                '*' | '_' | '~' => {
                    let len = run_len(&chars, i, c);
                    if c == '~' && len < 2 {
                        text.push(c);
                        i += 1;
                        continue;
                    }
                    let before = if i == 0 { None } else { Some(chars[i - 1]) };
                    let after = chars.get(i + len).copied();
                    let (open, close) = flanking(c, before, after);
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Delim {
                        ch: c,
                        len,
                        open,
                        close,
                    });
                    i += len;
                }
                _ => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        self.resolve_emphasis(pieces)
    }

    /// `[text](url)`, `[text][ref]`, `[text][]` or `[text]` with a definition, starting at the
    /// `[`. Returns the rendering and the index after the link.
    fn link(&self, chars: &[char], start: usize) -> Option<(String, usize)> {
        let close = matching_bracket(chars, start)?;
        let label: String = chars[start + 1..close].iter().collect();
        let shown = self.render(&label);
        let (url, next) = if chars.get(close + 1) == Some(&'(') {
            let (dest, next) = destination(chars, close + 2)?;
            (dest, next)
        } else if chars.get(close + 1) == Some(&'[') {
            let end = chars[close + 2..].iter().position(|c| *c == ']')? + close + 2;
            let key: String = chars[close + 2..end].iter().collect();
            let key = if key.is_empty() {
                label.to_lowercase()
            } else {
                key.to_lowercase()
            };
            (self.refs.get(&key)?.clone(), end + 1)
        } else {
            (self.refs.get(&label.to_lowercase())?.clone(), close + 1)
        };
        Some((link_text(&shown, &url), next))
    }

    /// Pairs emphasis markers (closers with the nearest opener of the same kind) and drops or
    /// converts them; unpaired markers stay as the literal characters they were.
    fn resolve_emphasis(&self, pieces: Vec<Piece>) -> String {
        let mut rendered: Vec<String> = Vec::with_capacity(pieces.len());
        let mut openers: Vec<(usize, char, usize)> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => rendered.push(t),
                Piece::Delim {
                    ch,
                    len,
                    open,
                    close,
                } => {
                    let literal = repeat(ch, len);
                    let matched = if close {
                        openers.iter().rposition(|(_, c, _)| *c == ch)
                    } else {
                        None
                    };
                    if let Some(pos) = matched {
                        let (index, _, open_len) = openers[pos];
                        // Openers between the pair stay literal; they can no longer match.
                        openers.truncate(pos);
                        let used = open_len.min(len);
                        let (open_mark, close_mark) = self.marks(ch, used);
                        rendered[index] = format!("{}{open_mark}", repeat(ch, open_len - used));
                        rendered.push(format!("{close_mark}{}", repeat(ch, len - used)));
                    } else if open {
                        openers.push((rendered.len(), ch, len));
                        rendered.push(literal);
                    } else {
                        rendered.push(literal);
                    }
                }
            }
        }
        rendered.concat()
    }

    /// What a matched pair of `len` markers becomes.
    fn marks(&self, ch: char, len: usize) -> (String, String) {
        match self.style {
            Style::Plain => (String::new(), String::new()),
            Style::WhatsApp => {
                let mark = match (ch, len) {
                    ('~', _) => "~",
                    (_, 1) => "_",
                    (_, 2) => "*",
                    _ => "*_",
                };
                let close: String = mark.chars().rev().collect();
                (mark.to_owned(), close)
            }
        }
    }
}

fn repeat(ch: char, n: usize) -> String {
    std::iter::repeat_n(ch, n).collect()
}

/// `text (url)`, or just the URL when the text adds nothing.
fn link_text(shown: &str, url: &str) -> String {
    let bare = |u: &str| {
        u.trim_start_matches("mailto:")
            .trim_start_matches("tel:")
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    };
    let shown = shown.trim();
    if url.is_empty() {
        return shown.to_owned();
    }
    if shown.is_empty() || shown == url || bare(shown) == bare(url) {
        return url.trim_start_matches("mailto:").to_owned();
    }
    format!("{shown} ({})", url.trim_start_matches("mailto:"))
}

fn run_len(chars: &[char], start: usize, ch: char) -> usize {
    chars[start..].iter().take_while(|c| **c == ch).count()
}

/// The start of the next run of exactly `len` `ch` characters at or after `from`.
fn find_run(chars: &[char], from: usize, ch: char, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == ch {
            let run = run_len(chars, i, ch);
            if run == len {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// CommonMark's flanking rules, simplified: a marker opens before a non-space and closes after
/// one; `_` never opens or closes inside a word (snake_case stays intact).
fn flanking(ch: char, before: Option<char>, after: Option<char>) -> (bool, bool) {
    let space_after = after.is_none_or(char::is_whitespace);
    let space_before = before.is_none_or(char::is_whitespace);
    let mut open = !space_after;
    let mut close = !space_before;
    if ch == '_' {
        open &= !before.is_some_and(char::is_alphanumeric);
        close &= !after.is_some_and(char::is_alphanumeric);
    }
    (open, close)
}

fn matching_bracket(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A link destination after `(`: the URL (balanced parentheses, optional `<...>`), an optional
/// title, then `)`.
fn destination(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start;
    while chars.get(i).is_some_and(|c| *c == ' ') {
        i += 1;
    }
    let mut url = String::new();
    if chars.get(i) == Some(&'<') {
        let end = chars[i..].iter().position(|c| *c == '>')? + i;
        url.extend(&chars[i + 1..end]);
        i = end + 1;
    } else {
        let mut depth = 0usize;
        while let Some(&c) = chars.get(i) {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                c if c.is_whitespace() => break,
                _ => {}
            }
            url.push(c);
            i += 1;
        }
    }
    // An optional "title" or 'title' is dropped.
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    if let Some(&quote) = chars.get(i).filter(|c| matches!(c, '"' | '\'')) {
        let end = chars[i + 1..].iter().position(|c| *c == quote)? + i + 1;
        i = end + 1;
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
    }
    (chars.get(i) == Some(&')')).then_some((url, i + 1))
}

/// `<https://…>`, `<mailto:…>`, `<a@b.c>` → the address; `<br>` → a line break.
fn angle(chars: &[char], start: usize) -> Option<(String, usize)> {
    let end = chars[start..].iter().position(|c| *c == '>')? + start;
    let inner: String = chars[start + 1..end].iter().collect();
    let lower = inner.to_ascii_lowercase();
    if matches!(lower.trim_end_matches('/').trim(), "br") {
        return Some(("\n".into(), end + 1));
    }
    if inner.contains(char::is_whitespace) {
        return None;
    }
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return Some((inner.trim_start_matches("mailto:").to_owned(), end + 1));
    }
    let email = inner
        .split_once('@')
        .is_some_and(|(u, h)| !u.is_empty() && h.contains('.'));
    email.then(|| (inner, end + 1))
}

fn entity(chars: &[char], start: usize) -> Option<(char, usize)> {
    let end = chars[start..].iter().take(8).position(|c| *c == ';')? + start;
    let name: String = chars[start + 1..end].iter().collect();
    let decoded = match name.as_str() {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "#39" | "apos" => '\'',
        "nbsp" => ' ',
        _ => return None,
    };
    Some((decoded, end + 1))
}

fn starts_url(chars: &[char], i: usize) -> bool {
    let prev_ok = i == 0 || !chars[i - 1].is_alphanumeric();
    let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
    prev_ok && (rest.starts_with("http://") || rest.starts_with("https://"))
}
