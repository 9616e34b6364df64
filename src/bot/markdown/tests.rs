//! A corpus of typical LLM answers and what an SMS (or WhatsApp) reader should receive.
use super::{to_plain_text, to_whatsapp};

/// (markdown as a model writes it, plain text for SMS).
const CORPUS: &[(&str, &str)] = &[
    // Emphasis of every kind disappears.
    ("Our **opening hours** are *9am to 5pm*, __Monday__ to _Friday_.", "Our opening hours are 9am to 5pm, Monday to Friday."),
    ("This is ***very*** important and ~~not~~ optional.", "This is very important and not optional."),
    // Headings lose their hashes, rules vanish, paragraphs keep one blank line.
    (
        "## Refund policy\n\nYou can return items within **30 days**.\n\n---\n\n### How to start\nReply RETURN.",
        "Refund policy\n\nYou can return items within 30 days.\n\nHow to start\nReply RETURN.",
    ),
    ("Title\n=====\nBody", "Title\n\nBody"),
    // Links stay readable and keep their address.
    ("See [our pricing page](https://example.com/pricing) for details.", "See our pricing page (https://example.com/pricing) for details."),
    ("Docs: [https://example.com/docs](https://example.com/docs)", "Docs: https://example.com/docs"),
    ("Email [support@example.com](mailto:support@example.com) or visit <https://example.com>.", "Email support@example.com or visit https://example.com."),
    ("Read [the guide][guide].\n\n[guide]: https://example.com/guide", "Read the guide (https://example.com/guide)."),
    ("![Store map](https://example.com/map.png)", "Store map (https://example.com/map.png)"),
    ("[**Book now**](https://example.com/book \"Booking\")", "Book now (https://example.com/book)"),
    ("Wiki: [Rust](https://en.wikipedia.org/wiki/Rust_(programming_language))", "Wiki: Rust (https://en.wikipedia.org/wiki/Rust_(programming_language))"),
    // Lists are flattened: one bullet style, no nesting, numbers kept.
    (
        "Here are your options:\n\n* **Basic** - $5/month\n* **Pro** - $15/month\n    * includes support\n+ Enterprise",
        "Here are your options:\n\n- Basic - $5/month\n- Pro - $15/month\n- includes support\n- Enterprise",
    ),
    ("Steps:\n1. Open the app\n2) Tap **Settings**\n   1. Choose *Account*", "Steps:\n1. Open the app\n2. Tap Settings\n1. Choose Account"),
    // Code fences go, their content stays as written.
    ("Run this:\n\n```bash\ncurl -X POST https://api.example.com/v1/reset\n```\n\nThen wait.", "Run this:\n\ncurl -X POST https://api.example.com/v1/reset\n\nThen wait."),
    ("Use the `RESET` keyword.", "Use the RESET keyword."),
    ("Type ``a `b` c`` exactly.", "Type a `b` c exactly."),
    // Quotes lose their markers.
    ("> Note: prices include tax.\n>> really", "Note: prices include tax.\nreally"),
    // Tables become rows of comma-separated cells.
    ("| Plan | Price |\n|------|------:|\n| Basic | $5 |\n| Pro | $15 |", "Plan, Price\nBasic, $5\nPro, $15"),
    // Things that only look like markup are left alone.
    ("2 * 3 = 6 and 5*4 = 20", "2 * 3 = 6 and 5*4 = 20"),
    ("Call the my_function_name helper in snake_case_module.", "Call the my_function_name helper in snake_case_module."),
    ("Open https://example.com/a_b_c/_private_ now", "Open https://example.com/a_b_c/_private_ now"),
    ("It takes ~5 minutes; a <b> tag and 3 < 4 stay.", "It takes ~5 minutes; a <b> tag and 3 < 4 stay."),
    ("Price: $5 #1 choice #hashtag", "Price: $5 #1 choice #hashtag"),
    ("Escaped \\*stars\\* and \\_underscores\\_", "Escaped *stars* and _underscores_"),
    ("Fish &amp; chips&nbsp;today", "Fish & chips today"),
    ("Line one<br>Line two", "Line one\nLine two"),
    // Emoji and other scripts pass through.
    ("**Привет!** 👋 Wie geht's? *日本語*", "Привет! 👋 Wie geht's? 日本語"),
    // Extra blank lines and trailing spaces are tidied.
    ("\n\nHello  \n\n\n\nWorld\n\n", "Hello\n\nWorld"),
    ("", ""),
];

#[test]
fn llm_markdown_becomes_readable_sms_text() {
    for (input, expected) in CORPUS {
        assert_eq!(to_plain_text(input), *expected, "input: {input:?}");
    }
}

#[test]
fn plain_text_output_has_no_markdown_markers_left() {
    for (input, _) in CORPUS {
        let out = to_plain_text(input);
        assert!(!out.contains("**"), "{out:?}");
        assert!(!out.contains("```"), "{out:?}");
        assert!(!out.contains("]("), "{out:?}");
    }
}

#[test]
fn plain_text_is_stable_when_applied_twice() {
    // Code spans and escapes are excluded: their output is literal text that may look like
    // Markdown again.
    for (input, _) in CORPUS.iter().filter(|(i, _)| !i.contains(['`', '\\'])) {
        let once = to_plain_text(input);
        // Bullets written as `- ` stay bullets; nothing else changes on a second pass.
        assert_eq!(to_plain_text(&once), once, "input: {input:?}");
    }
}

#[test]
fn a_typical_long_answer() {
    let input = "Sure! Here's how to reset your password:\n\n\
        1. Go to **Settings** > *Security*.\n\
        2. Tap [Reset password](https://example.com/reset).\n\
        3. Enter the code we text you.\n\n\
        **Note:** the code expires after `10 minutes`.\n\n\
        Let me know if you need anything else! 😊";
    let expected = "Sure! Here's how to reset your password:\n\n\
        1. Go to Settings > Security.\n\
        2. Tap Reset password (https://example.com/reset).\n\
        3. Enter the code we text you.\n\n\
        Note: the code expires after 10 minutes.\n\n\
        Let me know if you need anything else! 😊";
    assert_eq!(to_plain_text(input), expected);
}

#[test]
fn whatsapp_keeps_its_own_light_formatting() {
    assert_eq!(
        to_whatsapp("**Bold** and *italic* and ~~gone~~"),
        "*Bold* and _italic_ and ~gone~"
    );
    assert_eq!(
        to_whatsapp("## Hours\nOpen **daily**"),
        "*Hours*\nOpen *daily*"
    );
    assert_eq!(to_whatsapp("## **Hours**"), "*Hours*");
    assert_eq!(to_whatsapp("```\nx = 1\n```"), "```\nx = 1\n```");
    assert_eq!(
        to_whatsapp("See [site](https://example.com)"),
        "See site (https://example.com)"
    );
    assert_eq!(to_whatsapp("- a\n  - b"), "- a\n- b");
}

#[test]
fn unbalanced_markers_are_kept_rather_than_eaten() {
    assert_eq!(to_plain_text("**unterminated bold"), "**unterminated bold");
    assert_eq!(to_plain_text("[not a link]"), "[not a link]");
    assert_eq!(to_plain_text("[text](broken"), "[text](broken");
    assert_eq!(to_plain_text("```\nnever closed"), "never closed");
}

#[test]
fn markers_that_are_text_stay_text() {
    assert_eq!(
        to_plain_text("It takes ~approx~ 5 min"),
        "It takes ~approx~ 5 min"
    );
    assert_eq!(
        to_plain_text("Go to https://a.example/**x** now"),
        "Go to https://a.example/**x** now"
    );
}

#[test]
fn blocks_keep_the_line_breaks_they_had() {
    assert_eq!(to_plain_text("```\ncode\n```\nThen"), "code\nThen");
    assert_eq!(to_plain_text("> a\n>\n> b"), "a\n\nb");
    assert_eq!(to_whatsapp("    code\n\nafter"), "```\ncode\n```\n\nafter");
}
