//! `allowFrom`: which senders an integration answers, as ChatBotKit parses it.
//!
//! The string is split on newlines and commas; `*` allows everyone; every other entry is reduced
//! to its digits and must have 7-15 of them (invalid ones are dropped); an empty list denies all.

/// Does `allow_from` (None = `*`) admit `sender` (`+E164` or `whatsapp:+E164`)?
pub fn allows(allow_from: Option<&str>, sender: &str) -> bool {
    let Some(list) = allow_from else { return true };
    let sender_digits: String = sender.chars().filter(char::is_ascii_digit).collect();
    list.split(['\n', ',']).map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let digits: String = entry.chars().filter(char::is_ascii_digit).collect();
        (7..=15).contains(&digits.len()) && digits == sender_digits
    })
}

#[cfg(test)]
mod tests {
    use super::allows;

    #[test]
    fn wildcard_and_null_allow_everyone() {
        assert!(allows(None, "+15551230001"));
        assert!(allows(Some("*"), "whatsapp:+15551230001"));
    }

    #[test]
    fn digits_compare_with_or_without_plus() {
        let list = "15551230001,\n+15551230002";
        assert!(allows(Some(list), "+15551230001"));
        assert!(allows(Some(list), "whatsapp:+15551230002"));
        assert!(!allows(Some(list), "+15551230003"));
    }

    #[test]
    fn empty_or_invalid_list_denies_all() {
        assert!(!allows(Some(""), "+15551230001"));
        assert!(!allows(Some("123, abc"), "+15551230001"));
    }
}
