//! Visitor tokens: who a web chat visitor is, signed by Chatwire so a page cannot claim to be
//! someone else. `v1.<integration>.<visitor>.<expires-ms>.<signature>`. Anonymous visitors get
//! one when the widget first opens (kept in the browser, so a reload continues the
//! conversation); a site mints one for its signed-in users through the management API, so a
//! person known on the site continues their conversation on any device.
use crate::crypto::Cipher;

/// How long a token is good for.
pub const LIFETIME_MS: i64 = 30 * 24 * 3_600_000;

/// A verified visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub integration: String,
    /// `a-<random>` (anonymous) or `u-<the site's user id>`; the visitor's chat address is
    /// `chat:<id>`.
    pub id: String,
}

/// Whether `s` may be part of a visitor id (what a `chat:` address allows, minus `.`).
pub fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@'))
}

pub fn mint(cipher: &Cipher, integration: &str, visitor: &str, now_ms: i64) -> String {
    let body = format!("v1.{integration}.{visitor}.{}", now_ms + LIFETIME_MS);
    let signature = cipher.sign(&body);
    format!("{body}.{signature}")
}

/// The visitor a token names, if it is Chatwire's, unexpired, and for `integration`.
pub fn verify(cipher: &Cipher, token: &str, integration: &str, now_ms: i64) -> Option<Visitor> {
    let (body, signature) = token.rsplit_once('.')?;
    if !cipher.verify(body, signature) {
        return None;
    }
    let mut parts = body.split('.');
    let (Some("v1"), Some(for_integration), Some(visitor), Some(expires), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expires: i64 = expires.parse().ok()?;
    (for_integration == integration && expires > now_ms && valid_part(visitor)).then(|| Visitor {
        integration: integration.to_owned(),
        id: visitor.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_visitor_for_its_widget_only_until_it_expires() {
        let cipher = Cipher::from_key_text(&"11".repeat(32)).expect("key");
        let token = mint(&cipher, "w1", "u-42", 1_000);
        let visitor = verify(&cipher, &token, "w1", 2_000).expect("valid");
        assert_eq!(visitor.id, "u-42");
        assert_eq!(verify(&cipher, &token, "w2", 2_000), None, "another widget");
        assert_eq!(
            verify(&cipher, &token, "w1", 1_000 + LIFETIME_MS + 1),
            None,
            "expired"
        );
        let forged = token.replace("u-42", "u-43");
        assert_eq!(verify(&cipher, &forged, "w1", 2_000), None, "forged");
        let other = Cipher::from_key_text(&"22".repeat(32)).expect("key");
        assert_eq!(verify(&other, &token, "w1", 2_000), None, "another key");
        assert_eq!(verify(&cipher, "garbage", "w1", 2_000), None);
        assert!(!valid_part("a.b") && !valid_part("") && valid_part("u-a_b@c"));
    }
}
