//! End-to-end tests: the real application on a free port, a fresh database (SQLite always,
//! PostgreSQL when `CHATWIRE_TEST_POSTGRES_URL` is set), HTTP from the outside.
mod api;
mod common;
