//! Addresses of the people and numbers messages travel between: `+E164` for SMS/MMS,
//! `whatsapp:+E164` for WhatsApp, `chat:<id>` for channels without a phone (web chat, tests).
//!
//! The channel prefix is part of the address on the wire, so conversations, opt-outs and replies
//! key on the whole value; [`Address`] keeps the two halves apart so code can ask for the phone
//! number without string surgery, and its `Display` gives back the exact wire form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const WHATSAPP_PREFIX: &str = "whatsapp:";
const CHAT_PREFIX: &str = "chat:";

/// What a person reads messages on; it decides how a reply is rendered and which compliance
/// rules (opt-out keywords, segment counts) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Sms,
    #[serde(rename = "whatsapp")]
    WhatsApp,
    /// No phone involved: an identity of a chat channel.
    Chat,
}

impl ChannelKind {
    /// The wire prefix of this channel's addresses (`""` for SMS).
    pub fn prefix(self) -> &'static str {
        match self {
            ChannelKind::Sms => "",
            ChannelKind::WhatsApp => WHATSAPP_PREFIX,
            ChannelKind::Chat => CHAT_PREFIX,
        }
    }

    /// Lowercase name, as used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Sms => "sms",
            ChannelKind::WhatsApp => "whatsapp",
            ChannelKind::Chat => "chat",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phone address on one channel: `+14155550100` or `whatsapp:+14155550100`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    channel: ChannelKind,
    e164: String,
}

/// Why a string is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("{0:?} is not an E.164 number (+ then 7 to 15 digits, not starting with 0)")]
    NotE164(String),
    #[error("{0:?} is not a chat id (1 to 128 letters, digits, '.', '_', '-' or '@')")]
    NotChatId(String),
}

impl Address {
    /// Parses the wire form; the `whatsapp:` prefix is matched case-insensitively.
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        let has = |prefix: &str| {
            raw.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        if has(CHAT_PREFIX) {
            let id = &raw[CHAT_PREFIX.len()..];
            let valid = (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
            if !valid {
                return Err(AddressError::NotChatId(raw.to_owned()));
            }
            return Ok(Address {
                channel: ChannelKind::Chat,
                e164: id.to_owned(),
            });
        }
        let (channel, number) = if has(WHATSAPP_PREFIX) {
            (ChannelKind::WhatsApp, &raw[WHATSAPP_PREFIX.len()..])
        } else {
            (ChannelKind::Sms, raw)
        };
        if !crate::domain::phone::is_e164(number) {
            return Err(AddressError::NotE164(raw.to_owned()));
        }
        Ok(Address {
            channel,
            e164: number.to_owned(),
        })
    }

    /// Builds an address from a number already known to be E.164.
    pub fn new(channel: ChannelKind, e164: &str) -> Result<Self, AddressError> {
        Address::parse(&format!("{}{e164}", channel.prefix()))
    }

    pub fn channel(&self) -> ChannelKind {
        self.channel
    }

    /// The phone number without channel prefix, e.g. `+14155550100` (for a chat address, its
    /// id).
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The phone number, for the kinds that have one.
    pub fn phone(&self) -> Option<&str> {
        (self.channel != ChannelKind::Chat).then_some(self.e164.as_str())
    }

    /// The same number on another channel.
    pub fn with_channel(&self, channel: ChannelKind) -> Address {
        Address {
            channel,
            e164: self.e164.clone(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.channel.prefix(), self.e164)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Address::parse(&value)
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_address_round_trips() {
        let address = Address::parse("+14155550100").expect("valid");
        assert_eq!(address.channel(), ChannelKind::Sms);
        assert_eq!(address.e164(), "+14155550100");
        assert_eq!(address.to_string(), "+14155550100");
    }

    #[test]
    fn whatsapp_address_round_trips_and_prefix_is_case_insensitive() {
        let address = Address::parse("WhatsApp:+5215512345678").expect("valid");
        assert_eq!(address.channel(), ChannelKind::WhatsApp);
        assert_eq!(address.e164(), "+5215512345678");
        assert_eq!(address.to_string(), "whatsapp:+5215512345678");
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        for bad in [
            "",
            "4155550100",
            "+",
            "+0155550100",
            "+141555",
            "+1234567890123456",
            "+1 415 555 0100",
            "whatsapp:",
            "whatsapp:4155550100",
            "sms:+14155550100",
            "chat:",
            "chat:a b",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            Address::parse("+1234567").is_ok(),
            "7 digits is the minimum"
        );
    }

    #[test]
    fn chat_addresses_carry_an_id_and_no_phone() {
        let address = Address::parse("chat:visitor-7").expect("valid");
        assert_eq!(address.channel(), ChannelKind::Chat);
        assert_eq!(address.phone(), None);
        assert_eq!(address.to_string(), "chat:visitor-7");
    }

    #[test]
    fn serde_uses_the_wire_form() {
        let address = Address::parse("whatsapp:+14155238886").expect("valid");
        let json = serde_json::to_string(&address).expect("serialize");
        assert_eq!(json, "\"whatsapp:+14155238886\"");
        let back: Address = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, address);
        assert!(serde_json::from_str::<Address>("\"nope\"").is_err());
    }

    #[test]
    fn with_channel_keeps_the_number() {
        let sms = Address::parse("+14155238886").expect("valid");
        let wa = sms.with_channel(ChannelKind::WhatsApp);
        assert_eq!(wa.to_string(), "whatsapp:+14155238886");
        assert_eq!(Address::new(ChannelKind::Sms, "+14155238886"), Ok(sms));
    }
}
