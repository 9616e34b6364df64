//! The attack paths of issue 12, closed: each test replays one finding against the real app.
use crate::channel::{Rig, NUMBER};
use crate::common::backends;
use chatwire::channel::twilio::signature;

/// A signed form webhook to `path` of the rig's integration; returns the HTTP status.
pub async fn signed(rig: &Rig, path: &str, params: &[(String, String)]) -> u16 {
    let url = rig.app.url(&format!(
        "/v1/integration/twilio/{}/{path}",
        rig.integration
    ));
    let sig = signature::compute(&rig.twilio.account().auth_token, &url, params);
    rig.app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

fn inbound(rig: &Rig, sid: &str, extra: usize) -> Vec<(String, String)> {
    let mut params = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("AccountSid".to_owned(), rig.twilio.account().sid),
        ("From".to_owned(), "+15551230101".to_owned()),
        ("To".to_owned(), NUMBER.to_owned()),
        ("Body".to_owned(), "hi".to_owned()),
    ];
    params.extend((0..extra).map(|i| (format!("X{i}"), String::new())));
    params
}

#[tokio::test]
async fn a_webhook_with_too_many_fields_is_refused_before_any_signature_work() {
    for backend in backends() {
        let rig = Rig::start(backend).await;
        // Correctly signed: only the field cap can refuse it.
        let many = inbound(&rig, "SM0000000000000000000000000000a001", 300);
        assert_eq!(signed(&rig, "webhook", &many).await, 400);
        let normal = inbound(&rig, "SM0000000000000000000000000000a002", 40);
        assert_eq!(signed(&rig, "webhook", &normal).await, 200);
        rig.stop().await;
    }
}
