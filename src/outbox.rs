//! Outbox delivery.
