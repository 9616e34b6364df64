//! The Conversations REST calls Chatwire makes (`https://conversations.twilio.com/v1`), on the
//! Messaging client's transport: the same Basic auth, timeouts and error classification.
use crate::channel::twilio::rest_client::{checked_sid, Credentials, TwilioClient, TwilioError};
use reqwest::Method;
use serde_json::Value;

/// The events Chatwire listens to on a service: messages, their delivery receipts, and the
/// Conversation closing on Twilio's side.
pub const FILTERS: [&str; 3] = [
    "onMessageAdded",
    "onDeliveryUpdated",
    "onConversationStateUpdated",
];

/// A Conversations client bound to one base URL (Twilio's or the emulator's).
#[derive(Debug, Clone)]
pub struct ConversationsClient {
    inner: TwilioClient,
}

/// A message to post into a Conversation.
#[derive(Debug, Clone, Default)]
pub struct PostMessage<'a> {
    pub author: &'a str,
    pub body: &'a str,
    pub content_sid: Option<&'a str>,
    pub content_variables: Option<&'a str>,
    pub attributes: &'a str,
}

impl ConversationsClient {
    pub fn new(base_url: &str, http: reqwest::Client) -> Self {
        Self {
            inner: TwilioClient::new(base_url, http),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v1{rest}", self.inner.base_url())
    }

    async fn call(
        &self,
        method: Method,
        rest: &str,
        creds: &Credentials<'_>,
        form: Option<&[(&str, &str)]>,
    ) -> Result<Value, TwilioError> {
        let mut request = self.inner.request(method, &self.url(rest), creds);
        if let Some(form) = form {
            // REST-initiated actions fire the service's webhooks only when asked to: the bot's
            // own messages then reach every listener (Flex, other tools) like a person's.
            request = request
                .header("X-Twilio-Webhook-Enabled", "true")
                .form(form);
        }
        self.inner.execute(request).await
    }

    pub async fn fetch_service(
        &self,
        creds: &Credentials<'_>,
        service: &str,
    ) -> Result<Value, TwilioError> {
        let service = checked_sid("service", service)?;
        self.call(Method::GET, &format!("/Services/{service}"), creds, None)
            .await
    }

    /// Points the service's post-event webhook at `url` for [`FILTERS`].
    pub async fn set_service_webhook(
        &self,
        creds: &Credentials<'_>,
        service: &str,
        url: &str,
    ) -> Result<Value, TwilioError> {
        let service = checked_sid("service", service)?;
        let mut form = vec![("PostWebhookUrl", url), ("Method", "POST")];
        form.extend(FILTERS.iter().map(|f| ("Filters", *f)));
        self.call(
            Method::POST,
            &format!("/Services/{service}/Configuration/Webhooks"),
            creds,
            Some(&form),
        )
        .await
    }

    /// The account's Address Configurations.
    pub async fn address_configurations(
        &self,
        creds: &Credentials<'_>,
    ) -> Result<Vec<Value>, TwilioError> {
        let page = self
            .call(
                Method::GET,
                "/Configuration/Addresses?PageSize=1000",
                creds,
                None,
            )
            .await?;
        Ok(page["address_configurations"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Creates (or, given `existing`, updates) the Address Configuration that makes a first
    /// message to `address` create a Conversation in `service`.
    pub async fn auto_create(
        &self,
        creds: &Credentials<'_>,
        existing: Option<&str>,
        kind: &str,
        address: &str,
        service: &str,
    ) -> Result<Value, TwilioError> {
        let mut form = vec![
            ("AutoCreation.Enabled", "true"),
            ("AutoCreation.Type", "default"),
            ("AutoCreation.ConversationServiceSid", service),
        ];
        let path = match existing {
            Some(sid) => format!("/Configuration/Addresses/{}", checked_sid("address", sid)?),
            None => {
                form.extend([("Type", kind), ("Address", address)]);
                "/Configuration/Addresses".to_owned()
            }
        };
        self.call(Method::POST, &path, creds, Some(&form)).await
    }

    pub async fn post_message(
        &self,
        creds: &Credentials<'_>,
        service: &str,
        conversation: &str,
        message: &PostMessage<'_>,
    ) -> Result<Value, TwilioError> {
        let service = checked_sid("service", service)?;
        let conversation = checked_sid("conversation", conversation)?;
        let mut form = vec![
            ("Author", message.author),
            ("Attributes", message.attributes),
        ];
        match message.content_sid {
            Some(sid) => {
                form.push(("ContentSid", sid));
                if let Some(variables) = message.content_variables {
                    form.push(("ContentVariables", variables));
                }
            }
            None => form.push(("Body", message.body)),
        }
        self.call(
            Method::POST,
            &format!("/Services/{service}/Conversations/{conversation}/Messages"),
            creds,
            Some(&form),
        )
        .await
    }

    /// Sets a Conversation's state (`closed`, `inactive`).
    pub async fn set_state(
        &self,
        creds: &Credentials<'_>,
        service: &str,
        conversation: &str,
        state: &str,
    ) -> Result<Value, TwilioError> {
        let service = checked_sid("service", service)?;
        let conversation = checked_sid("conversation", conversation)?;
        self.call(
            Method::POST,
            &format!("/Services/{service}/Conversations/{conversation}"),
            creds,
            Some(&[("State", state)]),
        )
        .await
    }
}
