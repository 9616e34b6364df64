//! End-to-end tests: the real application on a free port, a fresh database (SQLite always,
//! PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set), HTTP from the outside.
mod api;
mod bad_input;
mod channel;
mod common;
mod completion;
mod conformance;
mod fixture_flows;
mod group_commit;
mod handoff;
mod hardening;
mod llm;
mod one_path;
mod operations;
mod scale_out;
mod standins;
mod studio;
mod webhook_bot;
