//! `setup` of a Conversations integration: the service is checked, its post-event webhook is
//! pointed at Chatwire, and each number or WhatsApp sender given gets an Address Configuration
//! with auto-creation into the service, so a first message to it creates a Conversation that
//! Chatwire answers.
use super::client::FILTERS;
use super::TwilioConversations;
use crate::channel::twilio::messaging::{credentials, SetupError};
use crate::domain::address::{Address, ChannelKind};
use crate::store::integration::Integration;
use serde_json::{json, Value};

/// What `setup` configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub service_sid: String,
    /// `(address, Address Configuration SID)` for each address given.
    pub addresses: Vec<(String, String)>,
}

impl TwilioConversations {
    /// Configures the integration's service for `webhook_url` and `addresses` (see the module
    /// documentation). Addresses already configured are updated, not duplicated.
    pub async fn configure_service(
        &self,
        integration: &Integration,
        webhook_url: &str,
        addresses: &[Address],
    ) -> Result<Configured, SetupError> {
        let creds = credentials(integration).ok_or(SetupError::NoCredentials)?;
        let service = integration
            .conversations
            .as_ref()
            .and_then(|c| c.service_sid.clone())
            .ok_or(SetupError::NoService)?;
        match self.client.fetch_service(&creds, &service).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => return Err(SetupError::ServiceNotFound(service)),
            Err(e) => return Err(SetupError::twilio(e, "verifying the service")),
        }
        self.client
            .set_service_webhook(&creds, &service, webhook_url)
            .await
            .map_err(|e| SetupError::twilio(e, "setting the service's webhook"))?;
        let existing = if addresses.is_empty() {
            Vec::new()
        } else {
            self.client
                .address_configurations(&creds)
                .await
                .map_err(|e| SetupError::twilio(e, "listing Address Configurations"))?
        };
        let mut configured = Vec::new();
        for address in addresses {
            let kind = match address.channel() {
                ChannelKind::Sms => "sms",
                ChannelKind::WhatsApp => "whatsapp",
                ChannelKind::Chat => {
                    return Err(SetupError::BadNumber(format!(
                        "{address} is not a phone number or WhatsApp sender"
                    )))
                }
            };
            let wire = address.to_string();
            let found = existing
                .iter()
                .find(|c| c["address"] == wire.as_str() && c["type"] == kind)
                .and_then(|c| c["sid"].as_str());
            let done = self
                .client
                .auto_create(&creds, found, kind, &wire, &service)
                .await
                .map_err(|e| SetupError::twilio(e, "configuring the address's auto-creation"))?;
            configured.push((wire, done["sid"].as_str().unwrap_or_default().to_owned()));
        }
        Ok(Configured {
            service_sid: service,
            addresses: configured,
        })
    }
}

impl Configured {
    pub fn wire(&self, integration_id: &str, webhook_url: &str) -> Value {
        json!({
            "id": integration_id,
            "serviceSid": self.service_sid,
            "webhookUrl": webhook_url,
            "webhookFilters": FILTERS,
            "addresses": self.addresses.iter()
                .map(|(address, sid)| json!({"address": address, "sid": sid, "autoCreation": true}))
                .collect::<Vec<_>>(),
        })
    }
}
