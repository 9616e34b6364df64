//! Phone number normalisation to E.164.
//!
//! ChatBotKit validates contact phones with libphonenumber and a default country of US. We keep
//! the same observable rule without the metadata tables: a number with `+` keeps its country code,
//! a bare 10-digit number is North American (+1), an 11-digit one starting with 1 likewise.
//! Anything else that is not 7-15 digits is rejected.

/// Normalise `raw` (spaces, dashes, dots, brackets allowed) to `+<digits>`.
pub fn normalize_e164(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let has_plus = trimmed.starts_with('+') || trimmed.starts_with("00");
    let mut digits = String::new();
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '+' => {}
            _ => return None,
        }
    }
    if trimmed.starts_with("00") {
        digits.drain(..2);
    }
    let e164 = if has_plus {
        digits
    } else if digits.len() == 10 {
        format!("1{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        digits
    } else {
        return None;
    };
    if (7..=15).contains(&e164.len()) && !e164.starts_with('0') {
        Some(format!("+{e164}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_e164;

    #[test]
    fn normalizes_common_forms() {
        assert_eq!(
            normalize_e164("+1 (415) 867-5309").as_deref(),
            Some("+14158675309")
        );
        assert_eq!(
            normalize_e164("415.867.5309").as_deref(),
            Some("+14158675309")
        );
        assert_eq!(
            normalize_e164("14158675309").as_deref(),
            Some("+14158675309")
        );
        assert_eq!(
            normalize_e164("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            normalize_e164("0044 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(normalize_e164("hello"), None);
        assert_eq!(normalize_e164("123"), None);
        assert_eq!(normalize_e164("+1234567890123456"), None);
        assert_eq!(normalize_e164(""), None);
    }
}
