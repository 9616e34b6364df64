//! Markdown to text for phone channels. LLMs answer in Markdown even when told not to; on SMS
//! the asterisks, hashes and `[text](url)` arrive verbatim and make a reply hard to read.
//!
//! [`to_plain_text`] (SMS) keeps the words and the structure a person needs: links become
//! `text (url)`, list items become `- item` or `1. item` without nesting, emphasis, headings,
//! quotes, rules and code fences lose their markers, tables become comma-separated rows.
//! [`to_whatsapp`] does the same but keeps WhatsApp's own light formatting (`*bold*`,
//! `_italic_`, `~strike~`, ``` fences). Parsing is CommonMark (with GitHub's tables and
//! strikethrough), so whatever CommonMark leaves as text (`snake_case`, `2 * 3`, an unclosed
//! `**`) stays as written.
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;

/// How emphasis and code come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Style {
    #[default]
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
    let source = markdown.replace("\r\n", "\n").replace('\r', "\n");
    // Single `~` parses as subscript only so that it can be written back as the literal `~` a
    // model meant ("~5 minutes"); strikethrough then needs `~~`.
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SUBSCRIPT;
    let mut writer = Writer {
        source: &source,
        style,
        ..Writer::default()
    };
    for (event, range) in Parser::new_ext(&source, options).into_offset_iter() {
        writer.event(event, range);
    }
    tidy(&writer.out)
}

#[derive(Default)]
struct Writer<'s> {
    source: &'s str,
    style: Style,
    out: String,
    /// Where the last written text ended in the source: a blank line between it and the next
    /// block is kept, a single line break stays one.
    last_content: Option<usize>,
    /// A rule or setext underline was passed: the next block starts after a blank line.
    blank_pending: bool,
    /// `out`'s length after a list item's `- `: the item's first block continues that line.
    item_marker_end: Option<usize>,
    /// Text of the links and images being read, with their destinations.
    links: Vec<(String, String)>,
    /// Cells of the table row being read.
    cells: Option<Vec<String>>,
    /// Closing marker of each open emphasis, as it is written.
    marks: Vec<&'s str>,
    /// Where the open heading starts in `out` (headings are bold on WhatsApp).
    heading_at: Option<usize>,
}

impl<'s> Writer<'s> {
    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag, range),
            Event::Text(text) => {
                // A no-break space (`&nbsp;`) is not in the GSM alphabet: one would make the
                // whole SMS UCS-2 and double its cost.
                self.text(&text.replace('\u{a0}', " "), range);
            }
            Event::Code(code) => match self.style {
                Style::Plain => self.text(&code, range),
                Style::WhatsApp => self.text(&format!("`{code}`"), range),
            },
            Event::Html(html) | Event::InlineHtml(html) => {
                let tag = html.trim().to_ascii_lowercase();
                let tag = tag.trim_end_matches(['/', '>']).trim_end();
                if tag == "<br" {
                    self.text("\n", range);
                } else {
                    self.text(&html, range);
                }
            }
            Event::SoftBreak | Event::HardBreak => self.push("\n"),
            Event::Rule => self.blank_pending = true,
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.begin_block(range.start, false),
            Tag::Heading { .. } => {
                self.begin_block(range.start, false);
                self.heading_at = Some(self.out.len());
                if self.style == Style::WhatsApp {
                    self.out.push('*');
                }
            }
            Tag::CodeBlock(_) => {
                self.begin_block(range.start, false);
                if self.style == Style::WhatsApp {
                    self.out.push_str("```\n");
                }
            }
            Tag::Item => {
                self.begin_block(range.start, true);
                // The number as written: a list split by nesting or by a change of delimiter
                // keeps the numbers the reader saw.
                let rest = self.source.get(range.start..).unwrap_or_default();
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                match digits {
                    0 => self.out.push_str("- "),
                    n => self.out.push_str(&format!("{}. ", &rest[..n])),
                }
                self.item_marker_end = Some(self.out.len());
            }
            Tag::TableHead | Tag::TableRow => {
                self.begin_block(range.start, false);
                self.cells = Some(Vec::new());
            }
            Tag::TableCell => {
                if let Some(cells) = &mut self.cells {
                    cells.push(String::new());
                }
            }
            Tag::Emphasis | Tag::Strong | Tag::Strikethrough | Tag::Subscript => {
                self.open_mark(&tag, range);
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.links.push((String::new(), dest_url.into_string()));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd, range: Range<usize>) {
        match tag {
            TagEnd::Heading(_) => {
                let at = self.heading_at.take().unwrap_or(self.out.len());
                if self.style == Style::WhatsApp {
                    if self.out.len() == at + 1 {
                        self.out.truncate(at);
                    } else {
                        self.out.push('*');
                    }
                }
                // A setext heading's `===` underline separates it like a rule.
                self.blank_pending = self
                    .source
                    .get(range)
                    .unwrap_or_default()
                    .trim_end()
                    .contains('\n');
            }
            TagEnd::CodeBlock => {
                let kept = self.out.trim_end_matches('\n').len();
                self.out.truncate(kept);
                if self.style == Style::WhatsApp {
                    self.out.push_str("\n```");
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                let cells = self.cells.take().unwrap_or_default();
                let cells: Vec<&str> = cells
                    .iter()
                    .map(|c| c.trim())
                    .filter(|c| !c.is_empty())
                    .collect();
                self.out.push_str(&cells.join(", "));
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Subscript => {
                if let Some(close) = self.marks.pop() {
                    self.push(close);
                }
            }
            TagEnd::Link | TagEnd::Image => {
                if let Some((shown, url)) = self.links.pop() {
                    self.push(&link_text(&shown, &url));
                }
            }
            _ => {}
        }
    }

    /// Starts a block on a new line, after a blank line where the source had one.
    fn begin_block(&mut self, start: usize, is_item: bool) {
        if !is_item && self.item_marker_end == Some(self.out.len()) {
            return;
        }
        if !self.out.is_empty() {
            let blank = self.blank_pending || self.blank_line_before(start);
            self.out.push_str(if blank { "\n\n" } else { "\n" });
        }
        self.blank_pending = false;
    }

    fn blank_line_before(&self, start: usize) -> bool {
        let Some(end) = self.last_content else {
            return false;
        };
        // From the end of the line that text was on (code blocks' text includes that end).
        let end = if self.source.get(..end).is_some_and(|s| s.ends_with('\n')) {
            end - 1
        } else {
            end
        };
        let gap = self.source.get(end.min(start)..start).unwrap_or_default();
        let gap = gap.strip_prefix('\n').unwrap_or(gap);
        // Lines wholly between the two blocks; `>` alone is a blank line inside a quote.
        let mut lines: Vec<&str> = gap.split('\n').collect();
        lines.pop();
        lines.iter().any(|l| {
            l.trim_matches(|c: char| c.is_whitespace() || c == '>')
                .is_empty()
        })
    }

    fn open_mark(&mut self, tag: &Tag<'_>, range: Range<usize>) {
        let source: &'s str = self.source;
        let span = source.get(range.clone()).unwrap_or_default();
        // Markers inside a bare URL (`/_private_`) and single `~` are text, not formatting.
        let (open, close) = if matches!(tag, Tag::Subscript) || inside_bare_url(source, range.start)
        {
            let len = match tag {
                Tag::Strong => 2,
                Tag::Emphasis => 1,
                _ => span.len() - span.trim_start_matches('~').len(),
            };
            let open = span.get(..len).unwrap_or_default();
            let close = span.get(span.len().saturating_sub(len)..);
            (open, close.unwrap_or_default())
        } else {
            let mark = self.whatsapp_mark(tag);
            (mark, mark)
        };
        self.push(open);
        self.marks.push(close);
    }

    fn whatsapp_mark(&self, tag: &Tag<'_>) -> &'static str {
        match (self.style, tag) {
            (Style::Plain, _) => "",
            // A heading is bold already.
            (_, Tag::Strong) if self.heading_at.is_some() => "",
            (_, Tag::Strong) => "*",
            (_, Tag::Strikethrough) => "~",
            _ => "_",
        }
    }

    fn text(&mut self, text: &str, range: Range<usize>) {
        self.push(text);
        self.last_content = Some(range.end);
    }

    /// Appends to the innermost open link, table cell, or the output.
    fn push(&mut self, text: &str) {
        if let Some((shown, _)) = self.links.last_mut() {
            shown.push_str(text);
        } else if let Some(cell) = self.cells.as_mut().and_then(|c| c.last_mut()) {
            cell.push_str(text);
        } else {
            self.out.push_str(text);
        }
    }
}

/// True when `at` falls inside a URL written out as text (`https://a.example/_x_`).
fn inside_bare_url(source: &str, at: usize) -> bool {
    let before = source.get(..at).unwrap_or_default();
    let word = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default();
    word.contains("http://") || word.contains("https://")
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

/// Collapses runs of blank lines, trims line ends and the whole text.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank_run = 0;
    for line in text.split('\n') {
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
