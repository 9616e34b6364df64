//! [`EmulatorHandle`]: a running in-process emulator and Rust helpers mirroring the control
//! API, so integration tests can script Twilio without building JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::channel::twilio::form::MessageStatus;
use crate::channel::twilio::resources::{IncomingNumber, MessageResource};
use crate::channel::twilio::rest_client::Credentials;

use super::state::{
    AccountConfig, DeliveryRecord, Emulator, Fault, InboundRequest, InboundResult, NumberConfig,
};
use super::ControlError;

/// A running emulator; dropping it stops the server.
pub struct EmulatorHandle {
    addr: SocketAddr,
    url: String,
    emulator: Arc<Emulator>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    pub(crate) fn new(
        addr: SocketAddr,
        emulator: Arc<Emulator>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    ) -> Self {
        EmulatorHandle {
            addr,
            url: format!("http://{addr}"),
            emulator,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (what `CHATWIRE_TWILIO_API_URL` should be).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to the state, for anything the helpers below do not cover.
    pub fn state(&self) -> &Arc<Emulator> {
        &self.emulator
    }

    /// The first configured account (the default development account unless configured).
    pub fn account(&self) -> AccountConfig {
        self.emulator
            .accounts()
            .into_iter()
            .next()
            .unwrap_or_else(|| AccountConfig {
                sid: super::DEFAULT_ACCOUNT_SID.to_owned(),
                auth_token: super::DEFAULT_AUTH_TOKEN.to_owned(),
            })
    }

    /// Credentials of `account` for [`crate::channel::twilio::rest_client::TwilioClient`].
    pub fn credentials(account: &AccountConfig) -> Credentials<'_> {
        Credentials {
            account_sid: &account.sid,
            auth_token: &account.auth_token,
        }
    }

    /// Sends a signed inbound webhook to the `to` number's `SmsUrl` and waits for the answer.
    pub async fn inject_inbound(
        &self,
        request: InboundRequest,
    ) -> Result<InboundResult, ControlError> {
        self.emulator.inject_inbound(&request).await
    }

    /// Shorthand for a text message from `from` to `to`.
    pub async fn send_text(
        &self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<InboundResult, ControlError> {
        self.inject_inbound(InboundRequest {
            from: from.to_owned(),
            to: to.to_owned(),
            body: body.to_owned(),
            media: Vec::new(),
            profile_name: None,
        })
        .await
    }

    /// Delivers an already-sent inbound webhook again (same `MessageSid`).
    pub async fn replay_inbound(&self, message_sid: &str) -> Result<InboundResult, ControlError> {
        self.emulator.replay_inbound(message_sid).await
    }

    /// Every message created through the REST API, oldest first.
    pub fn sent_messages(&self) -> Vec<MessageResource> {
        self.emulator.sent_messages()
    }

    pub fn webhooks(&self) -> Vec<DeliveryRecord> {
        self.emulator.webhooks()
    }

    pub fn status_callbacks(&self) -> Vec<DeliveryRecord> {
        self.emulator.status_callbacks()
    }

    /// Makes the next `fault.count` creates fail; returns how many faults are pending.
    pub fn add_fault(&self, fault: Fault) -> usize {
        self.emulator.add_fault(fault)
    }

    /// Adds or reconfigures a number (e.g. to point its `SmsUrl` at the app under test).
    pub fn configure_number(&self, config: &NumberConfig) -> anyhow::Result<IncomingNumber> {
        self.emulator.add_number(config)
    }

    /// Forces a message's status and posts its callback.
    pub async fn set_status(
        &self,
        message_sid: &str,
        status: MessageStatus,
        error_code: Option<i64>,
    ) -> Result<Option<u16>, ControlError> {
        self.emulator
            .force_status(message_sid, status, error_code)
            .await
    }

    pub fn reset(&self) {
        self.emulator.reset();
    }

    /// Waits until at least `n` messages were created, then returns them all.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<MessageResource>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so a create between the two is not missed.
            let created = self.emulator.created.notified();
            tokio::pin!(created);
            created.as_mut().enable();
            let messages = self.sent_messages();
            if messages.len() >= n {
                return Ok(messages);
            }
            if tokio::time::timeout_at(deadline, created).await.is_err() {
                anyhow::bail!(
                    "timed out after {timeout:?} waiting for {n} messages, have {}: {:?}",
                    messages.len(),
                    messages.iter().map(|m| &m.body).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Waits until `message_sid` reaches `status` (or a status ranked above it).
    pub async fn wait_for_status(
        &self,
        message_sid: &str,
        status: MessageStatus,
        timeout: Duration,
    ) -> anyhow::Result<MessageResource> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .sent_messages()
                .into_iter()
                .find(|m| m.sid == message_sid);
            if let Some(message) =
                found.filter(|m| m.status().is_some_and(|s| s.rank() >= status.rank()))
            {
                return Ok(message);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("timed out waiting for {message_sid} to reach {status}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
