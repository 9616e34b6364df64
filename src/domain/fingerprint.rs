//! Contact fingerprints computed the way ChatBotKit computes them, so a contact ensured here and
//! one ensured there from the same attributes get the same fingerprint.
//!
//! ChatBotKit's `createContactFingerprint(namespace, parts)` is a UUID v5 of the parts sorted
//! with JavaScript's default sort (UTF-16 order, `undefined` last) and joined with `;`, where an
//! undefined part becomes the empty string.
use sha1::{Digest, Sha1};

/// The namespace of fingerprints derived from a contact's attributes (`ensure` without one).
pub const UNTRUSTED_NAMESPACE: &str = "83eac369-0401-4a2c-992f-dd9b914420af";
/// The namespace ChatBotKit's Twilio integration uses for contacts collected by phone number.
pub const TWILIO_NAMESPACE: &str = "5bd7fb78-73be-48aa-8a1e-e4e1984fed22";

/// The fingerprint of `parts` (absent parts as `None`) in `namespace`.
pub fn fingerprint(namespace: &str, parts: &[Option<&str>]) -> String {
    let mut present: Vec<&str> = parts.iter().flatten().copied().collect();
    present.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    let absent = parts.len() - present.len();
    let mut all: Vec<&str> = present;
    all.extend(std::iter::repeat_n("", absent));
    uuid_v5(namespace, &all.join(";"))
}

/// RFC 4122 name-based UUID (SHA-1), lowercase and hyphenated. A namespace that is not a UUID
/// contributes no bytes, which still yields a stable value.
pub fn uuid_v5(namespace: &str, name: &str) -> String {
    let ns: Vec<u8> = hex::decode(namespace.replace('-', "")).unwrap_or_default();
    let mut hasher = Sha1::new();
    hasher.update(&ns);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_matches_the_rfc_example() {
        // Python's documented uuid5(NAMESPACE_DNS, 'python.org').
        assert_eq!(
            uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn parts_are_sorted_with_absent_ones_last() {
        let a = fingerprint(
            UNTRUSTED_NAMESPACE,
            &[Some("Zed"), None, Some("+15551230000"), Some("a@b.co")],
        );
        assert_eq!(a, uuid_v5(UNTRUSTED_NAMESPACE, "+15551230000;Zed;a@b.co;"));
        let b = fingerprint(
            UNTRUSTED_NAMESPACE,
            &[None, Some("a@b.co"), Some("Zed"), Some("+15551230000")],
        );
        assert_eq!(a, b, "order of the attributes does not matter");
    }
}
