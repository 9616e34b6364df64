//! Contact fingerprints computed the way ChatBotKit computes them, so a contact ensured here and
//! one ensured there from the same attributes get the same fingerprint.
//!
//! ChatBotKit's `createContactFingerprint(namespace, parts)` is a UUID v5 of the parts sorted
//! with JavaScript's default sort (UTF-16 order, `undefined` last) and joined with `;`, where an
//! undefined part becomes the empty string.
use uuid::{uuid, Uuid};

/// The namespace of fingerprints derived from a contact's attributes (`ensure` without one).
pub const UNTRUSTED_NAMESPACE: Uuid = uuid!("83eac369-0401-4a2c-992f-dd9b914420af");
/// The namespace ChatBotKit's Twilio integration uses for contacts collected by phone number.
pub const TWILIO_NAMESPACE: Uuid = uuid!("5bd7fb78-73be-48aa-8a1e-e4e1984fed22");

/// The fingerprint of `parts` (absent parts as `None`) in `namespace`: lowercase, hyphenated.
pub fn fingerprint(namespace: Uuid, parts: &[Option<&str>]) -> String {
    let mut present: Vec<&str> = parts.iter().flatten().copied().collect();
    present.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    let absent = parts.len() - present.len();
    let mut all: Vec<&str> = present;
    all.extend(std::iter::repeat_n("", absent));
    Uuid::new_v5(&namespace, all.join(";").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_part_is_the_rfc_uuid_v5_of_that_name() {
        // Python's documented uuid5(NAMESPACE_DNS, 'python.org').
        assert_eq!(
            fingerprint(Uuid::NAMESPACE_DNS, &[Some("python.org")]),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn parts_are_sorted_with_absent_ones_last() {
        let a = fingerprint(
            UNTRUSTED_NAMESPACE,
            &[Some("Zed"), None, Some("+15551230000"), Some("a@b.co")],
        );
        // Python's uuid5(UNTRUSTED_NAMESPACE, '+15551230000;Zed;a@b.co;').
        assert_eq!(a, "f6d0e333-c891-5aa8-bc92-9abb3b7f1700");
        let b = fingerprint(
            UNTRUSTED_NAMESPACE,
            &[None, Some("a@b.co"), Some("Zed"), Some("+15551230000")],
        );
        assert_eq!(a, b, "order of the attributes does not matter");
    }
}
