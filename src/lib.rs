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
//!
//! # Which module may use which
//!
//! * `domain`: pure types and rules (ids, clocks, phone numbers, allow lists). No I/O, and no
//!   other module of the crate.
//! * `bot`: the engines. An engine gets a [`bot::Turn`] (the conversation, its history, the
//!   contact, the bot's settings, its own state) and an [`bot::EngineContext`]: the storage
//!   capabilities it needs as a [`bot::EngineStore`] (dataset search, its own records), an HTTP
//!   client, the settings, the cipher, the counters. `bot` uses `domain`, `config`, `crypto`,
//!   `metrics` and `net`; never `http`, `app` or SQL, and `store` only in its tests.
//! * `net`: the outbound-HTTP policy for destinations a user's configuration chooses (webhook
//!   bots, Studio HTTP widgets, run-function): one table of internal address ranges, checked on
//!   every hop with the connection pinned to the checked address.
//! * `store`: all SQL, on both backends, and the resource schema (`store::schema`) every
//!   reader of the resource tables shares. It implements `bot::EngineStore` for its `Db`.
//! * `channel`: the provider protocols: Twilio's webhook signatures and forms, addresses,
//!   statuses, and its REST client, which no module outside `channel` (and the `emulator`
//!   standing in for Twilio) names.
//! * `http`: the edge. Routing, extraction, errors and the management API; it turns requests
//!   into calls of `store`, `bot` (the completion API) and the pipeline's entry points.
//! * `pipeline`, `outbox` (and their claim loop, `dispatch`): the message paths. They know the
//!   store and the channel seam, and run engines through `bot::select`; never a provider's
//!   client directly.
//! * `app`: the composition root. Builds the `AppState` the edge and the workers share, and
//!   the narrow context each engine gets from it.
//!
//! `tests/structure.rs` enforces the rules that matter most: nothing in `src/bot` names
//! `crate::http`, `crate::app` or `AppState`, or runs SQL; nothing outside `src/channel` and
//! `src/emulator` names Twilio's REST client.
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
pub mod net;
pub mod outbox;
pub mod pipeline;
pub mod sms;
pub mod store;
