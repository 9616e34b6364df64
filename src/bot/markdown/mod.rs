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
mod inline;

use inline::Inline;
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

#[cfg(test)]
mod tests;
