//! The management API's resource routes: the generic verbs for every resource described in
//! `store::schema`, then each resource's own extras.
use super::{Routes, Verb};
use crate::store::schema::{
    BLUEPRINT, BOT, CONTACT, CONVERSATION, CONVERSATIONS, DATASET, DATASET_RECORD, MESSAGE, TWILIO,
    WIDGET,
};

/// Registers every resource's routes, generic verbs first, then each resource's extras (which
/// replace the generic verbs they skip).
pub fn register(r: Routes) -> Routes {
    let r = r
        .crud_except(&BLUEPRINT, "blueprint", &[Verb::Delete])
        .crud(&DATASET, "dataset")
        .crud(&DATASET_RECORD, "datasetRecord")
        .crud(&BOT, "bot")
        .crud(&TWILIO, "twilioIntegration")
        .crud(&CONVERSATIONS, "conversationsIntegration")
        .crud(&WIDGET, "widgetIntegration")
        .crud(&CONTACT, "contact")
        .crud_except(&CONVERSATION, "conversation", &[Verb::Create])
        .crud_except(&MESSAGE, "conversationMessage", &[Verb::Create]);
    let r = super::blueprint_delete::register(r);
    let r = super::blueprint_resources::register(r);
    let r = super::contact_ensure::register(r);
    let r = super::contact_conversations::register(r);
    let r = super::conversation_create::register(r);
    let r = super::message_create::register(r);
    let r = super::twilio_setup::register(r);
    let r = super::conversations_setup::register(r);
    let r = super::bot_flow::register(r);
    let r = super::completion::register(r);
    let r = super::tokens::register(r);
    let r = super::channel_log::register(r);
    let r = super::agents::register(r);
    let r = super::handoffs::register(r);
    let r = super::widget::register(r);
    super::dataset_search::register(r)
}
