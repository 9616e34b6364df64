//! Chatwire puts bots on phone numbers.
//!
//! A message takes two paths through this crate (see `shared/design.md`):
//!
//! * **Inbound turn**: a provider posts a signed callback to `http::webhooks` (one route per
//!   channel); the channel (`channel::Channel`, Twilio Messaging in `channel::twilio`) verifies
//!   and parses it into a channel-neutral message; `pipeline::accept` stores it once per provider
//!   id before the provider gets its answer; `pipeline::turn` later runs one bot turn per stored
//!   message, strictly in order per conversation, and records the reply through the one door.
//! * **Outbox delivery**: `outbox` claims due rows, rate-limits per sender number, sends each
//!   through the channel its row names, and records the outcome; delivery receipts move a
//!   message's status forward only, and show in the message's `meta.delivery`.
//!
//! **The one door**: every outgoing message (a bot's reply, the HELP answer, `initiate`, a flow
//! started by `flow/execute`) is written by `store::outgoing` with its outbox rows, its
//! conversation, session, engine state, timer, inbound completion and idempotency key, in one
//! transaction. Nothing else writes outbox rows.
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
//! * `channel`: the channel seam (`channel::Channel`, the `Channels` registry) and the provider
//!   protocols behind it: Twilio's webhook signatures and forms and its REST client, which no
//!   module outside `channel` (and the `emulator` standing in for Twilio) names.
//! * `http`: the edge. Routing, extraction, errors and the management API; it turns requests
//!   into calls of `store`, `bot` (the completion API) and the pipeline's entry points.
//! * `pipeline`, `outbox` (and their claim loop, `dispatch`): the message paths. They know the
//!   store and the channel seam, and run engines through `bot::select`; they name no provider.
//! * `dev`: `chatwire dev`, a composition root too: the app, the emulator in-process, demo
//!   bots created through the management API, the phone page and the terminal chat.
//! * `logging`, `metrics`, `telemetry`: log output (pretty or JSON), the Prometheus registry and
//!   the optional OpenTelemetry export (one trace per message, its context kept with the work).
//! * `app`: the composition root. Builds the `AppState` the edge and the workers share, and
//!   the narrow context each engine gets from it.
//!
//! `tests/structure.rs` enforces the rules that matter most: nothing in `src/bot` names
//! `crate::http`, `crate::app` or `AppState`, or runs SQL; nothing outside `src/channel` and
//! `src/emulator` names Twilio's REST client; the pipeline, the outbox and the webhook edge name
//! no Twilio type.
pub mod app;
pub mod bot;
pub mod channel;
pub mod config;
pub mod console;
pub mod crypto;
pub mod dev;
pub mod dispatch;
pub mod domain;
pub mod emulator;
#[doc(hidden)]
pub mod fuzz;
pub mod handoff;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod pipeline;
pub mod sms;
pub mod store;
pub mod telemetry;
