//! The emulator driven over HTTP, the way the gateway and test scripts drive it, with a small
//! recording server standing in for the gateway's webhook endpoints.

mod control;
mod rest;
mod webhooks;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub uri: String,
    pub headers: HeaderMap,
    pub params: Vec<(String, String)>,
}

impl Hit {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Records every request and answers with scripted statuses (200 once the script runs out).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub async fn spawn() -> Receiver {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let params = serde_urlencoded::from_str(&body).unwrap_or_default();
                    let uri = uri.to_string();
                    state.hits.lock().expect("lock").push(Hit {
                        uri,
                        headers,
                        params,
                    });
                    let status = state
                        .script
                        .lock()
                        .expect("lock")
                        .pop_front()
                        .unwrap_or(200);
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    (status, [("content-type", "text/xml")], "<Response/>").into_response()
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            base: format!("http://{addr}"),
            ..receiver
        }
    }

    pub fn answer(&self, statuses: &[u16]) {
        self.script.lock().expect("lock").extend(statuses);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }

    pub async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.hits().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.hits()
    }
}

pub(crate) const SMS_NUMBER: &str = "+15005550006";
pub(crate) const WA_NUMBER: &str = "whatsapp:+14155238886";
pub(crate) const PERSON: &str = "+15551230001";

pub(crate) async fn emulator() -> EmulatorHandle {
    spawn(EmulatorConfig::default())
        .await
        .expect("emulator starts")
}

/// Points both default numbers' `SmsUrl` at the receiver's `/sms?tenant=acme`.
pub(crate) async fn wired() -> (EmulatorHandle, Receiver) {
    let emu = emulator().await;
    let receiver = Receiver::spawn().await;
    for address in [SMS_NUMBER, WA_NUMBER] {
        emu.configure_number(&NumberConfig {
            account_sid: DEFAULT_ACCOUNT_SID.into(),
            address: address.parse().expect("address"),
            sms_url: Some(format!("{}/sms?tenant=acme", receiver.base)),
            status_callback: None,
        })
        .expect("configure");
    }
    (emu, receiver)
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

pub(crate) async fn create(emu: &EmulatorHandle, form: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    let url = format!(
        "{}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
        emu.url()
    );
    let response = client()
        .post(url)
        .basic_auth(DEFAULT_ACCOUNT_SID, Some(DEFAULT_AUTH_TOKEN))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) async fn get_json(emu: &EmulatorHandle, path: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path}", emu.url()))
        .basic_auth(DEFAULT_ACCOUNT_SID, Some(DEFAULT_AUTH_TOKEN))
        .send()
        .await
        .expect("request");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) fn text(to: &str, body: &str) -> InboundRequest {
    InboundRequest {
        from: PERSON.into(),
        to: to.into(),
        body: body.into(),
        media: Vec::new(),
        profile_name: None,
    }
}
