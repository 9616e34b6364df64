//! The signature on webhook bot calls: `X-Chatwire-Signature: sha256=<hex>`, the HMAC-SHA256
//! (key: the bot's `webhookSecret`) of `{X-Chatwire-Timestamp}.{raw body}`. The timestamp is
//! inside the signed text, so an old request cannot be replayed under a new timestamp.
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a verifier should let a timestamp drift from its clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Chatwire-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a bot owner's service should do with a call: check the signature in constant time and
/// the timestamp against its clock (`now` in Unix seconds).
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str, now: i64) -> bool {
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(hex_mac) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_stale_or_tampered_ones_do_not() {
        let sig = sign("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &sig,
            1_700_000_100
        ));
        assert!(
            !verify("s3cret", "1700000000", b"{\"a\":2}", &sig, 1_700_000_100),
            "body changed"
        );
        assert!(
            !verify("other", "1700000000", b"{\"a\":1}", &sig, 1_700_000_100),
            "wrong key"
        );
        assert!(
            !verify("s3cret", "1700000001", b"{\"a\":1}", &sig, 1_700_000_100),
            "timestamp changed"
        );
        assert!(
            !verify(
                "s3cret",
                "1700000000",
                b"{\"a\":1}",
                &sig,
                1_700_000_000 + 301
            ),
            "stale"
        );
    }

    #[test]
    fn known_signature_vector() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            sign("key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
