//! SMS encoding, segment counting and reply splitting.
//!
//! Carriers bill and throttle by segment, so the outbox rate limiter and the emulator's
//! `num_segments` need the count Twilio would compute. The rules follow Twilio's own segment
//! calculator (reference section (h)): a message is GSM-7 only if every character is in the GSM
//! 03.38 basic or extension table, else UCS-2 for the whole message; a segment holds 1120 bits,
//! 1072 once a multipart header is needed; a grapheme cluster is never split across segments.
//!
//! [`split_reply`] is a separate concern: Twilio refuses a body over 1600 characters (21617),
//! so a long bot reply is cut into several messages at the most natural boundary available.

use unicode_segmentation::UnicodeSegmentation;

/// Twilio's limit on one message body, in characters.
pub const MAX_BODY_CHARS: usize = 1600;

const SEGMENT_BITS: usize = 1120;
const MULTIPART_SEGMENT_BITS: usize = 1072;

/// The GSM 03.38 basic table: one septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: an escape septet plus one, never split across segments.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// How a message body travels over the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 7-bit GSM alphabet: 160 characters in one segment, 153 per segment when split.
    Gsm7,
    /// UTF-16: 70 code units in one segment, 67 per segment when split.
    Ucs2,
}

/// The outcome of [`segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub encoding: Encoding,
    /// Segments Twilio bills for; 1 for an empty body, as Twilio reports.
    pub segments: u32,
    /// Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2.
    pub units: usize,
}

fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Detects the encoding of `text`: GSM-7 only if every character is in the GSM tables.
pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Counts the segments `text` occupies, exactly as Twilio's segment calculator does.
pub fn segments(text: &str) -> SegmentInfo {
    let encoding = encoding(text);
    let unit_bits = match encoding {
        Encoding::Gsm7 => 7,
        Encoding::Ucs2 => 16,
    };
    let cost = |grapheme: &str| -> usize {
        match encoding {
            Encoding::Gsm7 => grapheme.chars().filter_map(gsm7_septets).sum(),
            Encoding::Ucs2 => grapheme.encode_utf16().count(),
        }
    };
    let units: usize = text.graphemes(true).map(cost).sum();
    if units * unit_bits <= SEGMENT_BITS {
        return SegmentInfo {
            encoding,
            segments: 1,
            units,
        };
    }
    // Greedy packing into header-bearing segments, a whole grapheme at a time.
    let mut count: u32 = 1;
    let mut used_bits = 0;
    for grapheme in text.graphemes(true) {
        let bits = cost(grapheme) * unit_bits;
        if used_bits + bits > MULTIPART_SEGMENT_BITS && used_bits > 0 {
            count += 1;
            used_bits = 0;
        }
        used_bits += bits;
    }
    SegmentInfo {
        encoding,
        segments: count,
        units,
    }
}

/// Length as [`split_reply`] measures it: UTF-16 code units, never fewer than characters, so a
/// part is within the limit whether Twilio counts code points or UTF-16 units.
fn reply_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits a reply into messages of at most `max_chars` each (normally [`MAX_BODY_CHARS`]).
///
/// Cuts at the last sentence end in the second half of the allowed window, else at the last
/// whitespace, else at a grapheme boundary; whitespace at a cut is dropped and no part is empty.
/// A single grapheme longer than `max_chars` (only possible with tiny limits) becomes its own
/// part rather than being broken.
pub fn split_reply(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if reply_len(rest) <= max {
            parts.push(rest.to_owned());
            break;
        }
        let cut = cut_point(rest, max);
        let (part, tail) = rest.split_at(cut);
        let part = part.trim_end();
        if !part.is_empty() {
            parts.push(part.to_owned());
        }
        rest = tail.trim_start();
    }
    parts
}

/// Byte offset where `text` (longer than `max`, not starting with whitespace) should be cut.
fn cut_point(text: &str, max: usize) -> usize {
    let mut window_end = 0;
    let mut len = 0;
    let mut last_space = None;
    let mut last_sentence_end = None;
    for (offset, grapheme) in text.grapheme_indices(true) {
        let grapheme_len = reply_len(grapheme);
        if len + grapheme_len > max {
            break;
        }
        if grapheme.chars().all(char::is_whitespace) {
            last_space = Some(offset);
            if grapheme.contains('\n') || ends_sentence(&text[..offset]) {
                last_sentence_end = Some(offset);
            }
        }
        len += grapheme_len;
        window_end = offset + grapheme.len();
    }
    if window_end == 0 {
        // One grapheme wider than the limit: emit it whole rather than split it.
        return text.graphemes(true).next().map_or(text.len(), str::len);
    }
    // A sentence end in the first half would make a needlessly short message.
    let half = text[..window_end].len() / 2;
    match (last_sentence_end, last_space) {
        (Some(sentence), _) if sentence >= half => sentence,
        (_, Some(space)) => space,
        _ => window_end,
    }
}

/// Whether `before` ends a sentence, looking through closing quotes and brackets.
fn ends_sentence(before: &str) -> bool {
    before
        .trim_end_matches(['"', '\'', ')', ']', '»', '”', '’'])
        .ends_with(['.', '!', '?', '…', '。', '！', '？'])
}

#[cfg(test)]
#[path = "sms_tests.rs"]
mod tests;
