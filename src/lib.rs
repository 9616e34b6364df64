//! Chatwire puts bots on phone numbers.
//!
//! A message takes two paths through this crate (see `shared/design.md`):
//!
//! * **Inbound turn**: Twilio posts a signed webhook (`http::webhooks`), the signature and form are
//!   checked (`channel::twilio`), the message is stored once per `MessageSid` before Twilio gets
//!   its 200, and `pipeline` later runs one bot turn per stored message, strictly in order per
//!   conversation, writing the bot's reply and its outbox rows in one transaction.
//! * **Outbox delivery**: `outbox` claims due rows, rate-limits per sender number, sends them
//!   through Twilio's REST API and records the outcome; status callbacks move a message's status
//!   forward only.
//!
//! The management API (`http::api`) speaks ChatBotKit's v1 wire format; `store` keeps everything
//! in SQLite (default) or PostgreSQL behind one set of domain verbs.
pub mod app;
pub mod bot;
pub mod channel;
pub mod config;
pub mod crypto;
pub mod dispatch;
pub mod domain;
pub mod emulator;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod sms;
pub mod store;
