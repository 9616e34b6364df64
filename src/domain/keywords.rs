//! The one keyword table: what a whole message (trimmed, any case) means before any bot sees it.
//!
//! The opt-out and opt-in words are Twilio's default carrier keywords for SMS
//! (`shared/reference/twilio-protocol.md`); Twilio's emulator applies the same table. HELP/INFO
//! answer with the help text. The reset words start a new conversation.
use crate::domain::address::ChannelKind;

/// What a keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Stop every message to this sender until they opt back in.
    OptOut,
    /// Lift an opt-out.
    OptIn,
    /// Answer with the help text.
    Help,
    /// End the conversation; the next message starts a new one.
    Reset,
}

pub const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
pub const OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];
pub const HELP: &[&str] = &["HELP", "INFO"];
pub const RESET: &[&str] = &["///reset", "///restart", "///new"];

const TABLE: &[(Keyword, &[&str])] = &[
    (Keyword::OptOut, OPT_OUT),
    (Keyword::OptIn, OPT_IN),
    (Keyword::Help, HELP),
    (Keyword::Reset, RESET),
];

/// The keyword `body` is on `kind`, if any. Carrier keywords (opt-out, opt-in, help) are an
/// SMS rule, as Twilio applies them (and its emulator): on WhatsApp they count only when the
/// integration opts in (`whatsapp_keywords`), so by default a flow's "Cancel" branch can be
/// reached there; chat channels know only the reset words.
pub fn classify(body: &str, kind: ChannelKind, whatsapp_keywords: bool) -> Option<Keyword> {
    let carrier = match kind {
        ChannelKind::Sms => true,
        ChannelKind::WhatsApp => whatsapp_keywords,
        ChannelKind::Chat => false,
    };
    let word = body.trim();
    TABLE
        .iter()
        .filter(|(k, _)| carrier || *k == Keyword::Reset)
        .find(|(_, words)| words.iter().any(|w| w.eq_ignore_ascii_case(word)))
        .map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_any_case_is_a_keyword() {
        assert_eq!(
            classify(" stop ", ChannelKind::Sms, false),
            Some(Keyword::OptOut)
        );
        assert_eq!(
            classify("Stop All", ChannelKind::Sms, false),
            Some(Keyword::OptOut)
        );
        assert_eq!(
            classify("unstop", ChannelKind::Sms, false),
            Some(Keyword::OptIn)
        );
        assert_eq!(
            classify("info", ChannelKind::Sms, false),
            Some(Keyword::Help)
        );
        assert_eq!(
            classify("///RESET", ChannelKind::Sms, false),
            Some(Keyword::Reset)
        );
        assert_eq!(classify("please stop", ChannelKind::Sms, false), None);
    }

    #[test]
    fn whatsapp_words_reach_the_bot_except_reset() {
        assert_eq!(classify("Cancel", ChannelKind::WhatsApp, false), None);
        assert_eq!(classify("STOP", ChannelKind::WhatsApp, false), None);
        assert_eq!(classify("help", ChannelKind::WhatsApp, false), None);
        assert_eq!(
            classify("///reset", ChannelKind::WhatsApp, false),
            Some(Keyword::Reset)
        );
    }

    #[test]
    fn whatsapp_carrier_keywords_when_the_integration_opts_in() {
        assert_eq!(
            classify("Cancel", ChannelKind::WhatsApp, true),
            Some(Keyword::OptOut)
        );
        assert_eq!(
            classify("start", ChannelKind::WhatsApp, true),
            Some(Keyword::OptIn)
        );
        assert_eq!(
            classify("HELP", ChannelKind::WhatsApp, true),
            Some(Keyword::Help)
        );
        assert_eq!(
            classify("cancel my order", ChannelKind::WhatsApp, true),
            None
        );
        // The opt-in is WhatsApp's; chat channels still know only the reset words.
        assert_eq!(classify("stop", ChannelKind::Chat, true), None);
    }

    #[test]
    fn chat_channels_know_only_the_reset_words() {
        assert_eq!(classify("stop", ChannelKind::Chat, false), None);
        assert_eq!(classify("help", ChannelKind::Chat, false), None);
        assert_eq!(
            classify("///new", ChannelKind::Chat, false),
            Some(Keyword::Reset)
        );
    }
}
