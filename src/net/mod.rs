//! Network policy shared by everything that reaches out on behalf of a user's configuration.
pub mod outbound;
pub mod ranges;
