//! Channels carry messages between people and Chatwire. Twilio (SMS, MMS, WhatsApp) is the first.
pub mod twilio;
