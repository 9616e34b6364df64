//! Official segment-calculator vectors and derived vectors from reference section (h), then
//! the reply splitter's contract.

use super::*;

fn digits(n: usize) -> String {
    "0123456789".chars().cycle().take(n).collect()
}

fn assert_segments(text: &str, encoding: Encoding, count: u32) {
    let info = segments(text);
    assert_eq!(info.encoding, encoding, "encoding of {text:?}");
    assert_eq!(info.segments, count, "segments of {text:?}");
}

#[test]
fn gsm7_160_digits_fit_one_segment() {
    let info = segments(&digits(160));
    assert_eq!(
        info,
        SegmentInfo {
            encoding: Encoding::Gsm7,
            segments: 1,
            units: 160
        }
    );
}

#[test]
fn gsm7_161_digits_need_two_segments() {
    let info = segments(&digits(161));
    assert_eq!(
        (info.encoding, info.segments, info.units),
        (Encoding::Gsm7, 2, 161)
    );
}

#[test]
fn gsm7_307_digits_need_three_segments() {
    assert_segments(&digits(307), Encoding::Gsm7, 3);
}

#[test]
fn emoji_plus_68_digits_is_one_ucs2_segment() {
    let info = segments(&format!("😜{}", digits(68)));
    assert_eq!(
        (info.encoding, info.segments, info.units),
        (Encoding::Ucs2, 1, 70)
    );
}

#[test]
fn emoji_plus_69_digits_is_two_ucs2_segments() {
    assert_segments(&format!("😜{}", digits(69)), Encoding::Ucs2, 2);
}

#[test]
fn emoji_plus_133_digits_is_three_ucs2_segments() {
    assert_segments(&format!("😜{}", digits(133)), Encoding::Ucs2, 3);
}

#[test]
fn flag_plus_66_digits_is_one_segment_and_67_is_two() {
    assert_segments(&format!("🇮🇹{}", digits(66)), Encoding::Ucs2, 1);
    assert_segments(&format!("🇮🇹{}", digits(67)), Encoding::Ucs2, 2);
}

#[test]
fn zwj_rainbow_flag_plus_64_digits_is_one_segment_and_65_is_two() {
    let flag = "🏳️‍🌈";
    assert_eq!(flag.encode_utf16().count(), 6);
    assert_segments(&format!("{flag}{}", digits(64)), Encoding::Ucs2, 1);
    assert_segments(&format!("{flag}{}", digits(65)), Encoding::Ucs2, 2);
}

#[test]
fn each_extension_char_costs_two_septets() {
    for c in ['|', '^', '€', '{', '}', '[', ']', '~', '\\'] {
        let one = segments(&format!("{c}{}", digits(158)));
        assert_eq!(
            (one.encoding, one.segments, one.units),
            (Encoding::Gsm7, 1, 160),
            "{c}"
        );
        assert_segments(&format!("{c}{}", digits(159)), Encoding::Gsm7, 2);
    }
}

#[test]
fn accented_letters_outside_gsm_force_ucs2() {
    for c in ['Á', 'Ú', 'ú', 'ç', 'í', 'Í', 'ó', 'Ó'] {
        let seventy: String = std::iter::repeat_n(c, 70).collect();
        let seventy_one: String = std::iter::repeat_n(c, 71).collect();
        assert_segments(&seventy, Encoding::Ucs2, 1);
        assert_segments(&seventy_one, Encoding::Ucs2, 2);
    }
}

#[test]
fn extension_chars_cost_one_unit_in_ucs2() {
    let brackets = |n| std::iter::repeat_n(']', n).collect::<String>();
    assert_segments(&format!("😀{}", brackets(68)), Encoding::Ucs2, 1);
    assert_segments(&format!("😀{}", brackets(69)), Encoding::Ucs2, 2);
}

#[test]
fn euro_signs_80_fit_one_segment_and_81_need_two() {
    let euros = |n| std::iter::repeat_n('€', n).collect::<String>();
    let info = segments(&euros(80));
    assert_eq!(
        (info.encoding, info.segments, info.units),
        (Encoding::Gsm7, 1, 160)
    );
    assert_segments(&euros(81), Encoding::Gsm7, 2);
}

#[test]
fn gsm7_multipart_boundaries() {
    let a = |n| "a".repeat(n);
    for (len, count) in [(306, 2), (307, 3), (459, 3), (460, 4), (1530, 10)] {
        assert_segments(&a(len), Encoding::Gsm7, count);
    }
}

#[test]
fn e_acute_is_gsm7() {
    assert_segments(&"é".repeat(160), Encoding::Gsm7, 1);
}

#[test]
fn emoji_35_fit_one_segment_and_36_need_two() {
    assert_segments(&"😀".repeat(35), Encoding::Ucs2, 1);
    assert_segments(&"😀".repeat(36), Encoding::Ucs2, 2);
}

#[test]
fn backtick_and_curly_quotes_force_ucs2() {
    assert_eq!(encoding("say `hi`"), Encoding::Ucs2);
    assert_eq!(encoding("it’s"), Encoding::Ucs2);
    assert_eq!(encoding("plain [GSM] text {ok} €5"), Encoding::Gsm7);
}

#[test]
fn empty_body_is_one_gsm7_segment() {
    let info = segments("");
    assert_eq!(
        (info.encoding, info.segments, info.units),
        (Encoding::Gsm7, 1, 0)
    );
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn reply_of_2000_chars_splits_into_two_ordered_parts() {
    let mut text = String::new();
    let mut n = 0;
    while text.chars().count() < 2000 {
        n += 1;
        text.push_str(&format!(
            "This is sentence number {n}, which says a little. "
        ));
    }
    let text: String = text.chars().take(2000).collect();
    let parts = split_reply(&text, MAX_BODY_CHARS);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.chars().count() <= MAX_BODY_CHARS));
    assert!(
        parts[0].ends_with('.'),
        "cut at a sentence end: {:?}",
        &parts[0][parts[0].len() - 20..]
    );
    assert!(parts[1].starts_with("This is sentence number"));
    assert_eq!(squash(&parts.join(" ")), squash(&text));
}

#[test]
fn short_reply_is_one_trimmed_part() {
    assert_eq!(split_reply("  hello there \n", 1600), vec!["hello there"]);
}

#[test]
fn blank_reply_has_no_parts() {
    assert!(split_reply("", 1600).is_empty());
    assert!(split_reply(" \n\t ", 1600).is_empty());
}

#[test]
fn sentence_end_is_preferred_to_a_later_word_boundary() {
    let parts = split_reply("One two three. Four five six seven", 20);
    assert_eq!(parts, vec!["One two three.", "Four five six seven"]);
}

#[test]
fn early_sentence_end_falls_back_to_word_boundary() {
    let parts = split_reply("Hi. alpha beta gamma delta epsilon", 25);
    assert_eq!(parts, vec!["Hi. alpha beta gamma", "delta epsilon"]);
}

#[test]
fn text_without_spaces_is_cut_hard_between_graphemes() {
    let text = "🇮🇹".repeat(10);
    let parts = split_reply(&text, 9);
    // Each flag is 2 chars / 4 UTF-16 units: two flags per part, never half a flag.
    assert_eq!(parts.len(), 5);
    assert!(parts.iter().all(|p| *p == "🇮🇹🇮🇹"));
}

#[test]
fn grapheme_wider_than_limit_is_kept_whole() {
    let parts = split_reply("🏳️‍🌈🏳️‍🌈", 3);
    assert_eq!(parts, vec!["🏳️‍🌈", "🏳️‍🌈"]);
}

#[test]
fn every_part_is_within_limit_and_nonempty() {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(100)
        + &"x".repeat(3500)
        + " end";
    for max in [10, 37, 160, 1600] {
        let parts = split_reply(&text, max);
        assert!(parts
            .iter()
            .all(|p| !p.is_empty() && p.encode_utf16().count() <= max));
        assert!(parts.iter().all(|p| p.trim() == p));
        assert_eq!(
            parts.concat().replace(' ', ""),
            text.replace(' ', ""),
            "max {max}"
        );
    }
}

#[test]
fn newline_counts_as_a_sentence_boundary() {
    let parts = split_reply("first line here\nsecond line is longer", 30);
    assert_eq!(parts, vec!["first line here", "second line is longer"]);
}
