//! End-to-end tests: the real application on a free port, a fresh database (SQLite always,
//! PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set), HTTP from the outside.
mod api;
mod bad_input;
mod channel;
mod channel_log;
mod common;
mod completion;
mod conformance;
mod conversations;
mod dev;
mod first_minute;
mod fixture_flows;
mod group_commit;
mod handoff;
mod hardening;
mod llm;
mod logs;
mod observability;
mod one_path;
mod operations;
mod otel;
mod postgres_plans;
mod scale_out;
mod standins;
mod studio;
mod webchat;
mod webhook_bot;
