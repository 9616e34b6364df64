//! `X-Twilio-Signature`: computing it (the emulator signs what it sends) and checking it (the
//! gateway refuses unsigned or mis-signed webhooks).
//!
//! The signed string is the exact URL Twilio called followed by every form parameter as
//! `name` + `value`, names sorted by code point, multi-valued names deduplicated and sorted the
//! way the Python and Node SDKs do. Twilio's own signer is inconsistent about default ports and
//! about `'` in query strings, so [`validate`] accepts every URL variant the official SDKs accept
//! (as received, port removed, default port added, `'` written as `%27`) and nothing looser: host
//! and scheme case are kept, because the C# SDK's vectors prove Twilio signs them verbatim.
//! URL handling is done on the raw string on purpose: a URL parser would lowercase the host and
//! re-encode the path, which changes the bytes that were signed.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Computes the base64 HMAC-SHA1 signature Twilio would send for `url` and form `params`.
///
/// A fragment (`#ct=...` connection overrides) is never sent over HTTP, so it is not signed.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(auth_token, without_fragment(url), &signed_params(params))
}

/// Checks a form webhook's `X-Twilio-Signature` against the URL it was received on.
///
/// `url` is the public URL including the query string exactly as requested; for a GET webhook
/// pass an empty `params`. The parameters are sorted once and shared by every URL variant, so
/// the work is one sort plus a few HMACs over the body's length, whatever the names.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    validate_with_fragment(auth_token, url, None, params, signature)
}

/// Like [`validate`], also accepting each URL variant signed with `fragment` (the connection
/// overrides `setup` configured, `#` included) appended: the fragment never reaches the
/// server, and whether Twilio signs it is not documented, so both readings are accepted.
pub fn validate_with_fragment(
    auth_token: &str,
    url: &str,
    fragment: Option<&str>,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    let signed = signed_params(params);
    let Ok(keyed) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return false;
    };
    let signature = signature.trim().as_bytes();
    let url = without_fragment(url);
    // Each comparison is constant-time. The search stops at the first match: that only tells
    // the caller what its 2xx answer tells it anyway, while a mismatch tries every variant.
    let matches = |candidate: &str| {
        bool::from(
            sign_keyed(&keyed, candidate, &signed)
                .as_bytes()
                .ct_eq(signature),
        )
    };
    let matches_either = |variant: &str| {
        matches(variant) || fragment.is_some_and(|f| matches(&format!("{variant}{f}")))
    };
    // The URL as received first: it is what Twilio signs nearly always.
    matches_either(url)
        || url_variants(url)
            .iter()
            .filter(|v| v.as_str() != url)
            .any(|v| matches_either(v))
}

/// Every `name` + `value`, by name then value (code point order), repeated pairs once: the
/// order the Python and Node SDKs sign multi-valued names in.
fn signed_params(params: &[(String, String)]) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut out = Vec::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len()).sum());
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn sign(auth_token: &str, url: &str, signed_params: &[u8]) -> String {
    match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(keyed) => sign_keyed(&keyed, url, signed_params),
        // HMAC accepts keys of any length; this arm only satisfies the type.
        Err(_) => String::new(),
    }
}

/// Signs with a MAC already keyed with the auth token: the key's own hashing is done once per
/// callback, not once per URL variant tried.
fn sign_keyed(keyed: &Hmac<Sha1>, url: &str, signed_params: &[u8]) -> String {
    let mut mac = keyed.clone();
    mac.update(url.as_bytes());
    mac.update(signed_params);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a JSON webhook: the URL (which carries `bodySHA256=<hex>`) is signed with no
/// parameters, and the raw body must hash to that `bodySHA256`.
///
/// `raw_body` must be the bytes as received; re-serialising the JSON would change the hash.
pub fn validate_json_body(
    auth_token: &str,
    url_with_query: &str,
    raw_body: &[u8],
    signature: &str,
) -> bool {
    let Some(expected_hash) = query_param(url_with_query, "bodySHA256") else {
        return false;
    };
    let actual_hash = hex::encode(Sha256::digest(raw_body));
    let hash_ok = bool::from(
        actual_hash
            .as_bytes()
            .ct_eq(expected_hash.to_ascii_lowercase().as_bytes()),
    );
    let signature_ok = validate(auth_token, url_with_query, &[], signature);
    hash_ok & signature_ok
}

/// Lowercase hex SHA-256 of a body, the value Twilio puts in `bodySHA256`.
pub fn body_sha256(raw_body: &[u8]) -> String {
    hex::encode(Sha256::digest(raw_body))
}

fn without_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

/// The URL split around its port, so variants can be rebuilt without touching other bytes.
struct UrlParts<'a> {
    /// `scheme://userinfo@host`
    head: &'a str,
    port: Option<&'a str>,
    /// path, query (fragment already removed)
    tail: &'a str,
    scheme: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, after_scheme) = url.split_once("://")?;
    let authority_len = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_len];
    let head_len = scheme.len() + 3;
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    // An IPv6 literal has colons of its own; only a colon after `]` introduces a port.
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|c| bracket + c),
        None => host_port.rfind(':'),
    };
    let (host_end, port) = match port_colon {
        Some(colon) => {
            let port = &host_port[colon + 1..];
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (host_start + colon, Some(port))
        }
        None => (authority.len(), None),
    };
    Some(UrlParts {
        head: &url[..head_len + host_end],
        port,
        tail: &after_scheme[authority_len..],
        scheme,
    })
}

/// Every URL the official SDKs would try for a request received on `url`.
fn url_variants(url: &str) -> Vec<String> {
    let url = without_fragment(url);
    let mut variants = vec![url.to_owned()];
    if let Some(parts) = split_url(url) {
        let stripped = format!("{}{}", parts.head, parts.tail);
        variants.push(stripped);
        if parts.port.is_none() {
            let default_port = if parts.scheme.eq_ignore_ascii_case("https") {
                "443"
            } else {
                "80"
            };
            variants.push(format!("{}:{default_port}{}", parts.head, parts.tail));
        }
    }
    // Node's URL class writes `'` in a query as `%27`; Twilio may have signed either form.
    let normalised: Vec<String> = variants
        .iter()
        .filter_map(|v| {
            let (before, query) = v.split_once('?')?;
            query
                .contains('\'')
                .then(|| format!("{before}?{}", query.replace('\'', "%27")))
        })
        .collect();
    variants.extend(normalised);
    variants.sort_unstable();
    variants.dedup();
    variants
}

/// The percent-decoded value of the first `name=` pair in the URL's query string.
fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, query) = without_fragment(url).split_once('?')?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
