//! Twilio's wire protocol: webhook signatures, inbound forms, and the REST client used for sending.
pub use crate::domain::address;
pub mod dates;
pub mod form;
pub mod messaging;
pub mod overrides;
pub mod resources;
pub mod rest_client;
pub mod signature;
