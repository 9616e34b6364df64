//! Every official SDK vector (V1-V36) and derived vector (D1-D5) from
//! `shared/reference/twilio-protocol.md` section (a), one test each.

use super::*;

const TOKEN: &str = "12345";
const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const V1_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The common fixture `P`.
fn p() -> Vec<(String, String)> {
    pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ])
}

fn p_with_reason() -> Vec<(String, String)> {
    let mut params = p();
    params.extend(pairs(&[
        ("ReasonConferenceEnded", "test"),
        ("Reason", "Participant"),
    ]));
    params
}

/// Asserts the signature over `url` is `sig` and that a request received on `url` validates.
fn assert_signed(url: &str, params: &[(String, String)], sig: &str) {
    assert_eq!(compute(TOKEN, url, params), sig, "compute over {url}");
    assert!(validate(TOKEN, url, params, sig), "validate on {url}");
}

#[test]
fn v1_common_fixture_signs_and_validates() {
    assert_signed(U, &p(), V1_SIG);
}

#[test]
fn v2_https_default_port_signature_validates_on_portless_url() {
    let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_eq!(
        compute(TOKEN, with_port, &p()),
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    );
    assert!(validate(TOKEN, U, &p(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
}

#[test]
fn v3_http_default_port_signature_validates_on_portless_url() {
    let with_port = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    assert_eq!(
        compute(TOKEN, with_port, &p()),
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    );
    let received = "http://mycompany.com/myapp.php?foo=1&bar=2";
    assert!(validate(
        TOKEN,
        received,
        &p(),
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    ));
}

#[test]
fn v4_custom_port_signed_literally_validates() {
    let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
}

#[test]
fn v5_custom_port_request_accepts_portless_signature() {
    let received = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert!(validate(TOKEN, received, &p(), V1_SIG));
}

#[test]
fn v5b_custom_https_port_signed_literally_validates() {
    let url = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "CYn1h0gLBdNxDGkKJg6hYohgeD8=");
}

#[test]
fn v6_multi_valued_param_is_deduped_and_sorted() {
    let params = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    assert_signed(U, &params, "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
}

const BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

#[test]
fn v7_json_body_with_query_validates() {
    assert_eq!(body_sha256(BODY), BODY_HASH);
    let url = format!("{U}&bodySHA256={BODY_HASH}");
    let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
    assert_eq!(compute(TOKEN, &url, &[]), sig);
    assert!(validate_json_body(TOKEN, &url, BODY, sig));
    assert!(
        !validate_json_body(TOKEN, &url, b"{}", sig),
        "tampered body"
    );
}

#[test]
fn v8_json_body_without_other_query_validates() {
    let url = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
    let sig = "y77kIzt2vzLz71DgmJGsen2scGs=";
    assert_eq!(compute(TOKEN, &url, &[]), sig);
    assert!(validate_json_body(TOKEN, &url, BODY, sig));
}

#[test]
fn v9_empty_json_body_signed_with_port_validates_portless() {
    let hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_eq!(body_sha256(b"{}"), hash);
    let signed = format!("https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256={hash}");
    let sig = "Ldidvp12m26NI7eqEvxnEpkd9Hc=";
    assert_eq!(compute(TOKEN, &signed, &[]), sig);
    let received = format!("{U}&bodySHA256={hash}");
    assert!(validate_json_body(TOKEN, &received, b"{}", sig));
}

#[test]
fn json_body_without_body_sha256_param_is_rejected() {
    let sig = compute(TOKEN, U, &[]);
    assert!(!validate_json_body(TOKEN, U, b"{}", &sig));
}

#[test]
fn v10_userinfo_is_signed() {
    let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "CukzLTc1tT5dXEDIHm/tKBanW10=");
}

#[test]
fn v11_userinfo_with_port_validates_portless() {
    let signed = "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2";
    let sig = "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=";
    assert_eq!(compute(TOKEN, signed, &p()), sig);
    let received = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert!(validate(TOKEN, received, &p(), sig));
}

#[test]
fn v12_user_only_userinfo_is_signed() {
    let url = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "2YRLlVAflCqxaNicjMpJcSTgzSs=");
}

#[test]
fn v13_user_only_userinfo_with_port_validates_portless() {
    let signed = "https://user@mycompany.com:443/myapp.php?foo=1&bar=2";
    let sig = "aZfj4hyX1MLZhSS6QIL18Vn2/RA=";
    assert_eq!(compute(TOKEN, signed, &p()), sig);
    let received = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    assert!(validate(TOKEN, received, &p(), sig));
}

#[test]
fn v14_apostrophe_in_query_is_normalised_to_percent_27() {
    let signed = format!("{U}&Body=It%27s+amazing");
    let sig = "TfZzewPq8wqrGlMfyAud8+/IvJ0=";
    assert_eq!(compute(TOKEN, &signed, &p()), sig);
    let raw = format!("{U}&Body=It's+amazing");
    assert_eq!(compute(TOKEN, &raw, &p()), "dsq4Ehbj6cs+KdTkpF5sSSplOWw=");
    assert!(validate(TOKEN, &raw, &p(), sig));
}

#[test]
fn v15_array_param_signs_the_same_in_either_order() {
    let sig = "83O6e2vORAoJHUNzJjDWN1jz+BA=";
    let name = "MessagingBinding.Address";
    let forward = pairs(&[(name, "+1325xxxxxxx"), (name, "+1415xxxxxxx")]);
    let backward = pairs(&[(name, "+1415xxxxxxx"), (name, "+1325xxxxxxx")]);
    assert_signed(U, &forward, sig);
    assert_signed(U, &backward, sig);
}

#[test]
fn v16_empty_params_sign_the_url_alone() {
    assert_signed(U, &[], "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
}

#[test]
fn v17_url_without_query() {
    let url = "https://mycompany.com/myapp.php";
    assert_signed(url, &p(), "1xaxFBvyzXYvWplzNOSs28HWO94=");
}

#[test]
fn v18_query_params_are_signed() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2&type=thiswontbeusedinthesignaturegeneratorandsoshouldbeignored";
    assert_signed(url, &p(), "hYkNsTBttoNGkyCS0p+wWmQoRTg=");
}

#[test]
fn v19_encoded_query_is_signed_as_is() {
    let url = "https://mycompany.com/myapp.php?foo=hello%20world&bar=test%2Bvalue";
    assert_signed(url, &p(), "er2tvAP1Wx+iuTTE2BPgvEaN1cs=");
}

#[test]
fn v20_utf8_and_special_values() {
    let params = pairs(&[
        ("Message", "Hello & goodbye! @#$%^*()"),
        ("From", "+1 (415) 867-5309"),
        ("Special", "unicode: ñáéíóú"),
    ]);
    assert_signed(U, &params, "dCPiR4WtQ6QFN6pJh81CtlCcWLQ=");
}

#[test]
fn v21_empty_values() {
    let params = pairs(&[
        ("Digits", ""),
        ("CallSid", "CA1234567890ABCDE"),
        ("EmptyParam", ""),
    ]);
    assert_signed(U, &params, "9HHp/OqQMEwdrVebHDdA/+tqjX8=");
}

#[test]
fn v22_null_values_count_as_empty_strings() {
    let params = pairs(&[
        ("Digits", ""),
        ("CallSid", "CA1234567890ABCDE"),
        ("NullParam", ""),
    ]);
    assert_signed(U, &params, "L9lTTwIlxM1xGAtLRwhOSZggRhM=");
}

#[test]
fn v23_names_are_sorted() {
    let params = pairs(&[
        ("Zebra", "last"),
        ("Alpha", "first"),
        ("Beta", "second"),
        ("Gamma", "third"),
    ]);
    assert_signed(U, &params, "enveUe73ZTVLAekHxez3Qx6JuuQ=");
}

#[test]
fn v24_raw_utf8_url_is_signed_as_is() {
    let url = "https://mycompany.com/webhook/España?año=2023";
    assert_signed(url, &p(), "G/Hx6mqqnjUNlPAoi2Sp9bGst0g=");
}

#[test]
fn v25_names_are_case_sensitive() {
    let params = pairs(&[
        ("callSid", "lowercase"),
        ("CallSid", "uppercase"),
        ("CALLSID", "allcaps"),
    ]);
    assert_signed(U, &params, "jDK7WKT8wiNrwggd4ceTv4e1MJ4=");
}

#[test]
fn v26_double_slash_in_path_is_kept() {
    let url = "https://mycompany.com:443//myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "A9lH3u16NjyiiM/+wylw5rirFUs=");
}

#[test]
fn v27_prefix_name_sorts_first() {
    assert_signed(U, &p_with_reason(), "vOEb5UThFn24KEfnOFLQY2AE5FY=");
}

#[test]
fn v28_wrong_param_order_signature_is_rejected() {
    let wrong = "95+Bu0JVPi0r/SsESZCVf0dWAjw=";
    assert_ne!(compute(TOKEN, U, &p_with_reason()), wrong);
    assert!(!validate(TOKEN, U, &p_with_reason(), wrong));
}

#[test]
fn v29_http_url_and_custom_port_request_validate() {
    let url = "http://mycompany.com/myapp.php?foo=1&bar=2";
    let sig = "n2xBNyzSW7rfYStDtOFiFMv7qNo=";
    assert_signed(url, &p_with_reason(), sig);
    let received = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert!(validate(TOKEN, received, &p_with_reason(), sig));
}

#[test]
fn v30_decoded_form_body_is_signed() {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str("property=value&boolean=true").unwrap_or_default();
    assert_eq!(params.len(), 2);
    assert_signed(U, &params, "NBdBDr/T/lgjI+tlgpXjKZQZs/k=");
}

#[test]
fn v31_host_case_is_preserved_and_lowercase_signature_fails() {
    let url = "https://MyCompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "g9IN/x4Cft2g517EjYvEvM/W7LU=");
    assert!(!validate(TOKEN, url, &p(), V1_SIG));
}

#[test]
fn v32_mixed_case_host_with_custom_port() {
    let url = "https://MyCompany.com:1234/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "PCqOZm8cnu/L6+u5i5fuEd+Iac4=");
}

#[test]
fn v33_mixed_case_host_http() {
    let url = "http://MyCompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "XY7AlKOKL6im4yWyX84gldUrtis=");
}

#[test]
fn v34_userinfo_with_mixed_case_host() {
    let url = "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "PJ08CxXr7KLPjEQCTc8LkUSMwSM=");
}

#[test]
fn v35_uppercase_scheme_is_preserved() {
    let url = "HTTP://username:password@MyCompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "hy/l8pca+LFms4cvRdv8uiP6NGc=");
}

#[test]
fn v36_userinfo_case_is_preserved() {
    let url = "http://Username:Password@MyCompany.com/myapp.php?foo=1&bar=2";
    assert_signed(url, &p(), "SkTSKyDJH9kUlhItI0slbgZ1UsI=");
}

#[test]
fn node_round_trip_vectors_with_other_token() {
    let url = "https://example.com/path?test=param";
    assert_eq!(compute("s3cr3t", url, &[]), "loLgTitFAoWx57yy5oEU4Hlddzw=");
    let with_port = "https://example.com:443/path?test=param";
    assert_eq!(
        compute("s3cr3t", with_port, &[]),
        "IdwMFypqvNxti3YgvWWmfcNL26M="
    );
    assert!(validate("s3cr3t", url, &[], "IdwMFypqvNxti3YgvWWmfcNL26M="));
}

fn d1_params() -> Vec<(String, String)> {
    pairs(&[
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("ApiVersion", "2010-04-01"),
        ("Body", "Hello there"),
        ("From", "+15551230001"),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", "SM00000000000000000000000000000001"),
        ("SmsSid", "SM00000000000000000000000000000001"),
        ("SmsStatus", "received"),
        ("To", "+15559870002"),
    ])
}

#[test]
fn d1_inbound_sms_post() {
    let url = "https://gateway.example.com/twilio/sms";
    assert_signed(url, &d1_params(), "A/LOh4LIBf1J9ye6HodCLMeaoiU=");
}

#[test]
fn d2_inbound_whatsapp_post_with_query() {
    let url = "https://gateway.example.com/twilio/whatsapp?tenant=acme";
    let params = pairs(&[
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("ApiVersion", "2010-04-01"),
        ("Body", "Olá 👋 ¿qué tal?"),
        ("From", "whatsapp:+5215512345678"),
        ("MessageSid", "SM00000000000000000000000000000002"),
        ("MessageType", "text"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("ProfileName", "Ana"),
        ("ReferralNumMedia", "0"),
        ("SmsMessageSid", "SM00000000000000000000000000000002"),
        ("SmsSid", "SM00000000000000000000000000000002"),
        ("SmsStatus", "received"),
        ("To", "whatsapp:+14155238886"),
        ("WaId", "5215512345678"),
    ]);
    assert_signed(url, &params, "5fwp+W8lBTYzGMGK344RXWN4gVQ=");
}

#[test]
fn d3_get_webhook_signs_query_only() {
    let url = "https://gateway.example.com/twilio/sms?AccountSid=AC00000000000000000000000000000001&ApiVersion=2010-04-01&Body=Hello+there&From=%2B15551230001&MessageSid=SM00000000000000000000000000000001&NumMedia=0&NumSegments=1&SmsMessageSid=SM00000000000000000000000000000001&SmsSid=SM00000000000000000000000000000001&SmsStatus=received&To=%2B15559870002";
    assert_signed(url, &[], "NlEWgCqNyJOWLkrs4n4StFPr5Do=");
}

#[test]
fn d4_inbound_sms_on_custom_port() {
    let url = "https://gateway.example.com:8443/twilio/sms";
    assert_signed(url, &d1_params(), "d+pYKJFYWeC+JUD8FS7GU2jjcxQ=");
}

#[test]
fn d5_json_event_body() {
    let body = br#"{"event":"x"}"#;
    let hash = "ebc2c4ea03938ee05e18c1a712d9fa02de923d6f2db34b68fe1f8dcf651e479d";
    assert_eq!(body_sha256(body), hash);
    let url = format!("https://gateway.example.com/hook?bodySHA256={hash}");
    let sig = "2P6VKTCXB3wN/XAjcA5FblXf8pM=";
    assert_eq!(compute(TOKEN, &url, &[]), sig);
    assert!(validate_json_body(TOKEN, &url, body, sig));
}

#[test]
fn wrong_token_missing_signature_and_tampered_params_are_rejected() {
    assert!(!validate("54321", U, &p(), V1_SIG));
    assert!(!validate(TOKEN, U, &p(), ""));
    let mut tampered = p();
    tampered[2].1 = "9999".to_owned();
    assert!(!validate(TOKEN, U, &tampered, V1_SIG));
}

#[test]
fn fragment_is_not_signed() {
    let with_fragment = format!("{U}#ct=1000&rc=2");
    assert_eq!(compute(TOKEN, &with_fragment, &p()), V1_SIG);
}

#[test]
fn ipv6_host_port_is_stripped_and_added() {
    let signed = "http://[::1]/hook";
    let sig = compute(TOKEN, signed, &p());
    assert!(validate(TOKEN, "http://[::1]:8080/hook", &p(), &sig));
    let with_default = compute(TOKEN, "http://[::1]:80/hook", &p());
    assert!(validate(TOKEN, signed, &p(), &with_default));
}

#[test]
fn a_signature_over_the_url_with_its_connection_overrides_is_accepted_only_for_that_fragment() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let fragment = "#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx";
    let params = p();
    let with_fragment = super::sign(
        "12345",
        &format!("{url}{fragment}"),
        &super::signed_params(&params),
    );
    assert!(validate_with_fragment(
        "12345",
        url,
        Some(fragment),
        &params,
        &with_fragment
    ));
    assert!(
        !validate("12345", url, &params, &with_fragment),
        "not without the fragment given"
    );
    assert!(!validate_with_fragment(
        "12345",
        url,
        Some("#rc=1"),
        &params,
        &with_fragment
    ));
    // The usual signature, over the URL without the fragment, is still accepted.
    let without = compute("12345", url, &params);
    assert!(validate_with_fragment(
        "12345",
        url,
        Some(fragment),
        &params,
        &without
    ));
}
