//! Markdown to text for phone channels. LLMs answer in Markdown even when told not to; on SMS
//! the asterisks, hashes and `[text](url)` arrive verbatim and make a reply hard to read.
//!
//! [`to_plain_text`] (SMS) keeps the words and the structure a person needs: links become
//! `text (url)`, list items become `- item` or `1. item` without nesting, emphasis, headings,
//! quotes, rules and code fences lose their markers, tables become comma-separated rows.
//! [`to_whatsapp`] does the same but keeps WhatsApp's own light formatting (`*bold*`,
//! `_italic_`, `~strike~`, ``` fences). This is a forgiving line-based converter, not a
//! CommonMark parser: on anything it does not recognise it leaves the text as written, because
//! a stray `*` is better than a lost word.
use std::collections::HashMap;

/// How emphasis and code come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    WhatsApp,
}

/// Markdown as plain text for SMS.
pub fn to_plain_text(markdown: &str) -> String {
    render(markdown, Style::Plain)
}

/// Markdown as WhatsApp text: its own `*bold*`, `_italic_`, `~strike~` and ``` kept.
pub fn to_whatsapp(markdown: &str) -> String {
    render(markdown, Style::WhatsApp)
}

fn render(markdown: &str, style: Style) -> String {
    let text = markdown.replace("\r\n", "\n").replace('\r', "\n");
    let (lines, refs) = reference_definitions(&text);
    let inline = Inline { refs: &refs, style };
    let mut out: Vec<String> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for line in lines {
        let trimmed = line.trim();
        if let Some((ch, len)) = fence {
            if is_fence_close(trimmed, ch, len) {
                fence = None;
                if style == Style::WhatsApp {
                    out.push("```".into());
                }
            } else {
                out.push(line.trim_end().to_owned());
            }
            continue;
        }
        if let Some(open) = fence_open(trimmed) {
            fence = Some(open);
            if style == Style::WhatsApp {
                out.push("```".into());
            }
            continue;
        }
        if trimmed.starts_with('|') && is_table_separator(trimmed) {
            continue;
        }
        if is_rule(trimmed) || is_setext_underline(trimmed, out.last()) {
            out.push(String::new());
            continue;
        }
        out.push(block_line(trimmed, &inline));
    }
    tidy(&out)
}

/// Collects `[label]: url` definitions (and removes them) so `[text][label]` can use them.
fn reference_definitions(text: &str) -> (Vec<&str>, HashMap<String, String>) {
    let mut refs = HashMap::new();
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let t = line.trim_start();
        let def = t.strip_prefix('[').and_then(|rest| {
            let (label, after) = rest.split_once("]:")?;
            let url = after.split_whitespace().next()?;
            (!label.is_empty() && !label.contains(']')).then(|| {
                (
                    label.to_lowercase(),
                    url.trim_matches(['<', '>']).to_owned(),
                )
            })
        });
        match def {
            Some((label, url)) => {
                refs.insert(label, url);
            }
            None => lines.push(line),
        }
    }
    (lines, refs)
}

fn fence_open(trimmed: &str) -> Option<(char, usize)> {
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    (len >= 3).then_some((ch, len))
}

fn is_fence_close(trimmed: &str, ch: char, len: usize) -> bool {
    trimmed.chars().take_while(|c| *c == ch).count() >= len && trimmed.chars().all(|c| c == ch)
}

/// `---`, `***`, `___` (spaces allowed between): a thematic break.
fn is_rule(trimmed: &str) -> bool {
    let marks: Vec<char> = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3 && matches!(marks[0], '-' | '*' | '_') && marks.iter().all(|c| *c == marks[0])
}

/// `===` under a paragraph line (a setext heading).
fn is_setext_underline(trimmed: &str, previous: Option<&String>) -> bool {
    !trimmed.is_empty()
        && trimmed.chars().all(|c| c == '=')
        && previous.is_some_and(|p| !p.trim().is_empty())
}

/// One line outside a fence: heading, quote, list item, table row or paragraph.
fn block_line(trimmed: &str, inline: &Inline) -> String {
    let mut line = trimmed;
    // Quotes (nested too) lose their markers.
    while let Some(rest) = line.strip_prefix('>') {
        line = rest.trim_start();
    }
    if let Some(heading) = atx_heading(line) {
        let text = inline.render(heading);
        return match inline.style {
            Style::WhatsApp if !text.is_empty() => format!("*{}*", strip_outer_bold(&text)),
            _ => text,
        };
    }
    if let Some(rest) = bullet(line) {
        return format!("- {}", inline.render(rest));
    }
    if let Some((number, rest)) = ordered(line) {
        return format!("{number}. {}", inline.render(rest));
    }
    if line.starts_with('|') {
        let cells: Vec<String> = split_cells(line)
            .iter()
            .map(|c| inline.render(c.trim()))
            .collect();
        return cells
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
    }
    inline.render(line)
}

/// A heading already wrapped in `*` by the WhatsApp renderer is not wrapped twice.
fn strip_outer_bold(text: &str) -> &str {
    text.strip_prefix('*')
        .and_then(|t| t.strip_suffix('*'))
        .filter(|t| !t.is_empty())
        .unwrap_or(text)
}

fn atx_heading(line: &str) -> Option<&str> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    // A closing run of `#` is decoration.
    let body = rest.trim_end_matches('#');
    Some(if body.is_empty() || body.ends_with(' ') {
        body.trim_end()
    } else {
        rest
    })
}

fn bullet(line: &str) -> Option<&str> {
    let mut chars = line.chars();
    let mark = chars.next()?;
    if !matches!(mark, '-' | '*' | '+') {
        return None;
    }
    let rest = chars.as_str();
    rest.starts_with([' ', '\t']).then(|| rest.trim_start())
}

fn ordered(line: &str) -> Option<(&str, &str)> {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &line[digits..];
    let after = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))?;
    after
        .starts_with([' ', '\t'])
        .then(|| (&line[..digits], after.trim_start()))
}

fn is_table_separator(line: &str) -> bool {
    line.contains('-')
        && line
            .chars()
            .all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
}

/// Cells of `| a | b |`, honouring `\|` escapes.
fn split_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner
        .strip_suffix('|')
        .filter(|s| !s.ends_with('\\'))
        .unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cell.push('|');
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// Collapses runs of blank lines, trims line ends and the whole text.
fn tidy(lines: &[String]) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

/// Inline rendering of one line: code spans, links, autolinks, emphasis, escapes, entities.
struct Inline<'a> {
    refs: &'a HashMap<String, String>,
    style: Style,
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
    fn render(&self, line: &str) -> String {
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

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
