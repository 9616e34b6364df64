//! The resources of the management API, described as data (see [`super::resource`]): the
//! tables behind ChatBotKit's resources and how their rows look on the wire. The HTTP routes
//! (`http::api::resources`) and every other reader of these tables use the same descriptors.
//!
//! Field names, types and defaults follow `shared/reference/chatbotkit-api.md`. Chatwire's own
//! additions are marked "(Chatwire)" in their docs and never change ChatBotKit's fields.
use super::resource::{Field, Resource, Ty};

const VISIBILITY: Ty = Ty::Enum(&["private", "protected", "public"], "private");
const ALIAS: Field = Field::rw(
    "alias",
    "alias",
    Ty::Alias,
    "The unique alias for the instance",
);
const NAME: Field = Field::rw("name", "name", Ty::Name, "The associated name");
const DESCRIPTION: Field = Field::rw(
    "description",
    "description",
    Ty::Name,
    "The associated description",
);
const META: Field = Field::rw("meta", "meta", Ty::Meta, "Meta data information");
const BLUEPRINT_ID: Field = Field::rw(
    "blueprintId",
    "blueprint_id",
    Ty::Ref("blueprints", "Blueprint"),
    "The ID of the blueprint",
);

pub static BLUEPRINT: Resource = Resource {
    path: "blueprint",
    label: "Blueprint",
    table: "blueprints",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        Field::rw("visibility", "visibility", VISIBILITY, "The visibility"),
    ],
    list_filters: &[],
    list_asc: false,
    has_alias: true,
    required: &[],
};

pub static DATASET: Resource = Resource {
    path: "dataset",
    label: "Dataset",
    table: "datasets",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        BLUEPRINT_ID,
        Field::rw(
            "store",
            "store",
            Ty::Text("default"),
            "The storage class for the dataset",
        ),
        Field::rw(
            "reranker",
            "reranker",
            Ty::OptStr,
            "The reranker class for the dataset",
        ),
        Field::rw(
            "recordMaxTokens",
            "record_max_tokens",
            Ty::Int(0, 1_000_000),
            "Tokens per record",
        ),
        Field::rw(
            "searchMinScore",
            "search_min_score",
            Ty::Float(-1_000_000.0, 1_000_000.0),
            "The minimum score to filter search results by",
        ),
        Field::rw(
            "searchMaxRecords",
            "search_max_records",
            Ty::Int(0, 1000),
            "Records returned by a search",
        ),
        Field::rw(
            "searchMaxTokens",
            "search_max_tokens",
            Ty::Int(0, 1_000_000),
            "Tokens used by a search",
        ),
        Field::rw(
            "matchInstruction",
            "match_instruction",
            Ty::OptStr,
            "An instruction to include before found records",
        ),
        Field::rw(
            "mismatchInstruction",
            "mismatch_instruction",
            Ty::OptStr,
            "An instruction if no records were found",
        ),
        Field::rw(
            "separators",
            "separators",
            Ty::OptStr,
            "Separators used when tokenizing text",
        ),
        Field::rw(
            "visibility",
            "visibility",
            VISIBILITY,
            "The dataset visibility",
        ),
    ],
    list_filters: &[("blueprintId", "blueprint_id")],
    list_asc: false,
    has_alias: true,
    required: &[],
};

pub static DATASET_RECORD: Resource = Resource {
    path: "dataset/{datasetId}/record",
    label: "Dataset record",
    table: "dataset_records",
    parent: Some(("dataset_id", &DATASET)),
    fields: &[
        Field::rw("text", "text", Ty::Text(""), "The record text"),
        Field::rw("source", "source", Ty::OptStr, "Where the record came from"),
        META,
    ],
    list_filters: &[],
    list_asc: false,
    has_alias: false,
    required: &["text"],
};

pub static BOT: Resource = Resource {
    path: "bot",
    label: "Bot",
    table: "bots",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        Field::rw(
            "model",
            "model",
            Ty::Text(""),
            "A model definition. An LLM model name selects the LLM engine; `echo`, `flow`, `faq` and `webhook` select Chatwire's built-in engines (Chatwire)",
        ),
        Field::rw("backstory", "backstory", Ty::Text(""), "The backstory this configuration is using"),
        Field::rw("datasetId", "dataset_id", Ty::Ref("datasets", "Dataset"), "The id of the dataset this configuration is using"),
        Field::rw("skillsetId", "skillset_id", Ty::OptStr, "The id of the skillset this configuration is using"),
        Field::rw("privacy", "privacy", Ty::Bool(false), "The privacy flag for this configuration"),
        Field::rw("moderation", "moderation", Ty::Bool(false), "The moderation flag for this configuration"),
        BLUEPRINT_ID,
        Field::rw("visibility", "visibility", VISIBILITY, "The bot visibility"),
        Field::rw(
            "webhook",
            "webhook",
            Ty::Json,
            "For `model: \"webhook\"`: `{\"url\", \"format\": \"chatwire\"|\"rasa\", \"timeoutMs\"}`; each turn is POSTed to `url`, signed with `webhookSecret` (Chatwire)",
        ),
        Field::wo(
            "webhookSecret",
            "webhook_secret",
            Ty::Secret,
            "HMAC-SHA256 key for the `X-Chatwire-Signature` header of webhook bot calls (write-only, encrypted at rest) (Chatwire)",
        ),
        Field::rw(
            "fallbackText",
            "fallback_text",
            Ty::OptStr,
            "Sent when the bot's engine fails (LLM down or slow, webhook bot error); default `CHATWIRE_FALLBACK_TEXT` (Chatwire)",
        ),
        Field::rw(
            "flow",
            "flow",
            Ty::Json,
            "For `model: \"flow\"`: a Twilio Studio flow definition exactly as exported from the console (`{description, states, initial_state, flags}`); validated on create and update (Chatwire)",
        ),
        Field::rw(
            "faq",
            "faq",
            Ty::Json,
            "For `model: \"faq\"`: FAQ settings over the bot's dataset (`minScore`, `maxOptions`, `triesBeforeEscalation`, `negativeRatingsBeforeEscalation`, `ratings`, `forms`, ...); see the FAQ engine docs (Chatwire)",
        ),
        Field::rw("lang", "lang", Ty::Text("en"), "The bot's language (ISO 639-1) for its fixed texts: en, es, fr, de, pt; others fall back to English (Chatwire)"),
        Field::rw(
            "labels",
            "labels",
            Ty::Json,
            "Overrides of the bot's fixed texts: `{\"thanks\": \"Cheers!\"}` or per language `{\"es\": {\"thanks\": \"¡Gracias!\"}}` (Chatwire)",
        ),
    ],
    list_filters: &[("blueprintId", "blueprint_id")],
    list_asc: false,
    has_alias: true,
    required: &[],
};

/// A number's send rate: at least one message per 100 s (below that, replies wait so long
/// they look lost), at most Twilio's highest throughput tier.
pub const MIN_SEND_RATE: f64 = 0.01;
pub const MAX_SEND_RATE: f64 = 1000.0;
/// The longest burst window: a person waits for their first answer up to a few of these.
pub const MAX_BURST_WINDOW_MS: i64 = 30_000;

pub static TWILIO: Resource = Resource {
    path: "integration/twilio",
    label: "Twilio integration",
    table: "twilio_integrations",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        BLUEPRINT_ID,
        Field::rw("botId", "bot_id", Ty::Ref("bots", "Bot"), "The ID of the bot this configuration is using"),
        Field::rw("accountSid", "account_sid", Ty::Sid("AC"), "The Twilio account SID (`AC` and 32 hex digits)"),
        Field::wo("authToken", "auth_token", Ty::Secret, "The Twilio auth token (write-only, encrypted at rest)"),
        Field::rw("voice", "voice", Ty::OptStr, "The voice configuration structured string"),
        Field::rw("contactCollection", "contact_collection", Ty::Bool(false), "Whether to collect contacts"),
        Field::rw(
            "sessionDuration",
            "session_duration",
            Ty::Int(0, 2_592_000_000),
            "The session duration (in milliseconds); 0 starts a new conversation for every message",
        ),
        Field::rw(
            "allowFrom",
            "allow_from",
            Ty::Text("*"),
            "Newline-or-comma-separated list of allowed senders (E.164, `+` optional); `*` allows all, empty denies all",
        ),
        Field::rw(
            "phoneNumber",
            "phone_number",
            Ty::Address,
            "The Twilio number (E.164 or whatsapp:+E.164) this integration answers and sends from (Chatwire)",
        ),
        Field::rw(
            "sendRate",
            "send_rate",
            Ty::Float(MIN_SEND_RATE, MAX_SEND_RATE),
            "Outbound messages per second for this number, 0.01 to 1000 (Chatwire)",
        ),
        Field::rw(
            "whatsappTemplate",
            "whatsapp_template",
            Ty::Json,
            "The approved WhatsApp template a message goes out as when it would leave outside WhatsApp's 24-hour window: `{\"contentSid\": \"HX...\", \"contentVariables\": {\"1\": \"{{body}}\"}}` (`{{body}}` is the message's text); without one such a message is refused (Chatwire)",
        ),
        Field::rw(
            "whatsappKeywords",
            "whatsapp_keywords",
            Ty::Bool(false),
            "Apply the carrier keywords (STOP, START, HELP and the rest) to WhatsApp messages as to SMS; by default they reach the bot, as on Twilio, where they are an SMS rule (Chatwire)",
        ),
        Field::rw(
            "burstWindow",
            "burst_window",
            Ty::Int(0, MAX_BURST_WINDOW_MS),
            "Burst debounce in milliseconds: a person's messages that arrive within this long of each other get one bot turn over all of them (for LLM bots, so that \"hi\" / \"I need\" / \"to change my booking\" get one answer); null or 0 (the default) answers every message on its own (Chatwire)",
        ),
    ],
    list_filters: &[("blueprintId", "blueprint_id"), ("botId", "bot_id")],
    list_asc: false,
    has_alias: true,
    required: &[],
};

/// A Twilio Conversations service as one integration: every number or WhatsApp sender with an
/// Address Configuration in the service reaches the bot (Chatwire).
pub static CONVERSATIONS: Resource = Resource {
    path: "integration/conversations",
    label: "Conversations integration",
    table: "conversations_integrations",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        BLUEPRINT_ID,
        Field::rw("botId", "bot_id", Ty::Ref("bots", "Bot"), "The ID of the bot this configuration is using"),
        Field::rw("accountSid", "account_sid", Ty::OptStr, "The Twilio account SID"),
        Field::wo("authToken", "auth_token", Ty::Secret, "The Twilio auth token (write-only, encrypted at rest)"),
        Field::rw("serviceSid", "service_sid", Ty::OptStr, "The Conversations service SID (IS...)"),
        Field::rw(
            "identity",
            "identity",
            Ty::Text("chatwire-bot"),
            "The author the bot's messages are posted as; messages by this identity never start a turn",
        ),
        Field::rw("contactCollection", "contact_collection", Ty::Bool(false), "Whether to collect contacts"),
        Field::rw(
            "sessionDuration",
            "session_duration",
            Ty::Int(0, 2_592_000_000),
            "The session duration (in milliseconds); when it ends the Conversation is closed (or made inactive)",
        ),
        Field::rw(
            "sessionEnd",
            "session_end",
            Ty::Enum(&["closed", "inactive"], "closed"),
            "What a session's end does to the Twilio Conversation",
        ),
        Field::rw(
            "allowFrom",
            "allow_from",
            Ty::Text("*"),
            "Newline-or-comma-separated list of allowed authors (E.164, `+` optional); `*` allows all, empty denies all",
        ),
        Field::rw(
            "sendRate",
            "send_rate",
            Ty::Float(MIN_SEND_RATE, MAX_SEND_RATE),
            "Outbound messages per second per conversation, 0.01 to 1000",
        ),
        Field::rw(
            "whatsappTemplate",
            "whatsapp_template",
            Ty::Json,
            "The approved WhatsApp template a message goes out as when a WhatsApp participant's 24-hour window has closed: `{\"contentSid\": \"HX...\", \"contentVariables\": {...}}`",
        ),
    ],
    list_filters: &[("blueprintId", "blueprint_id"), ("botId", "bot_id")],
    list_asc: false,
    has_alias: true,
    required: &[],
};

pub static WIDGET: Resource = Resource {
    path: "integration/widget",
    label: "Widget integration",
    table: "widget_integrations",
    parent: None,
    fields: &[
        NAME,
        DESCRIPTION,
        META,
        BLUEPRINT_ID,
        Field::rw("botId", "bot_id", Ty::Ref("bots", "Bot"), "The ID of the bot this widget talks to"),
        Field::rw("theme", "theme", Ty::OptStr, "The widget's theme"),
        Field::rw("layout", "layout", Ty::OptStr, "The widget's layout"),
        Field::rw("title", "title", Ty::OptStr, "The title shown at the top of the chat"),
        Field::rw("intro", "intro", Ty::OptStr, "The text shown under the title"),
        Field::rw("initial", "initial", Ty::OptStr, "The first message shown by the bot"),
        Field::rw("placeholder", "placeholder", Ty::OptStr, "The input's placeholder"),
        Field::rw(
            "origin",
            "origin",
            Ty::OptStr,
            "Sites allowed to embed the widget: comma-separated origins such as `https://example.com`, or `*` (unset: any)",
        ),
        Field::rw(
            "sessionDuration",
            "session_duration",
            Ty::Int(0, 2_592_000_000),
            "The session duration (in milliseconds)",
        ),
        Field::rw("language", "language", Ty::OptStr, "The widget's language"),
        Field::rw("plugins", "plugins", Ty::OptStr, "Widget plugins"),
        Field::rw("stream", "stream", Ty::Bool(false), "Widget option `stream` (kept and returned as ChatBotKit does)"),
        Field::rw("verbose", "verbose_mode", Ty::Bool(false), "Widget option `verbose` (kept and returned as ChatBotKit does)"),
        Field::rw("tools", "tools", Ty::Bool(false), "Widget option `tools` (kept and returned as ChatBotKit does)"),
        Field::rw("unfurl", "unfurl", Ty::Bool(false), "Widget option `unfurl` (kept and returned as ChatBotKit does)"),
        Field::rw("math", "math", Ty::Bool(false), "Widget option `math` (kept and returned as ChatBotKit does)"),
        Field::rw("carousel", "carousel", Ty::Bool(false), "Widget option `carousel` (kept and returned as ChatBotKit does)"),
        Field::rw("form", "form", Ty::Bool(false), "Widget option `form` (kept and returned as ChatBotKit does)"),
        Field::rw("attachments", "attachments", Ty::Bool(false), "Widget option `attachments` (kept and returned as ChatBotKit does)"),
        Field::rw("autoScroll", "auto_scroll", Ty::Bool(false), "Widget option `autoScroll` (kept and returned as ChatBotKit does)"),
        Field::rw("startFirst", "start_first", Ty::Bool(false), "Widget option `startFirst` (kept and returned as ChatBotKit does)"),
        Field::rw("contactCollection", "contact_collection", Ty::Bool(false), "Widget option `contactCollection` (kept and returned as ChatBotKit does)"),
        Field::rw("exportConversation", "export_conversation", Ty::Bool(false), "Widget option `exportConversation` (kept and returned as ChatBotKit does)"),
        Field::rw("restartConversation", "restart_conversation", Ty::Bool(false), "Widget option `restartConversation` (kept and returned as ChatBotKit does)"),
        Field::rw("maximize", "maximize", Ty::Bool(false), "Widget option `maximize` (kept and returned as ChatBotKit does)"),
        Field::rw("messagePeek", "message_peek", Ty::Bool(false), "Widget option `messagePeek` (kept and returned as ChatBotKit does)"),
        Field::rw("voiceIn", "voice_in", Ty::Bool(false), "Widget option `voiceIn` (kept and returned as ChatBotKit does)"),
        Field::rw("voiceOut", "voice_out", Ty::Bool(false), "Widget option `voiceOut` (kept and returned as ChatBotKit does)"),
        Field::rw("poweredBy", "powered_by", Ty::Bool(false), "Widget option `poweredBy` (kept and returned as ChatBotKit does)"),
    ],
    list_filters: &[("blueprintId", "blueprint_id"), ("botId", "bot_id")],
    list_asc: false,
    has_alias: false,
    required: &[],
};

pub static CONTACT: Resource = Resource {
    path: "contact",
    label: "Contact",
    table: "contacts",
    parent: None,
    fields: &[
        ALIAS,
        NAME,
        DESCRIPTION,
        META,
        BLUEPRINT_ID,
        Field::rw(
            "fingerprint",
            "fingerprint",
            Ty::Fingerprint,
            "A unique fingerprint of the contact",
        ),
        Field::rw("email", "email", Ty::Email, "The contact email address"),
        Field::rw(
            "phone",
            "phone",
            Ty::Phone,
            "The contact phone number, normalised to E.164 (default country US)",
        ),
        Field::rw("nick", "nick", Ty::OptStr, "The contact nickname"),
        Field::rw(
            "preferences",
            "preferences",
            Ty::OptStr,
            "The contact preferences",
        ),
        Field::rw(
            "verifiedAt",
            "verified_at",
            Ty::Int(0, i64::MAX),
            "When the contact was verified (ms)",
        ),
    ],
    list_filters: &[],
    list_asc: false,
    has_alias: true,
    required: &[],
};

pub static CONVERSATION: Resource = Resource {
    path: "conversation",
    label: "Conversation",
    table: "conversations",
    parent: None,
    fields: &[
        NAME,
        DESCRIPTION,
        META,
        Field::rw(
            "contactId",
            "contact_id",
            Ty::Ref("contacts", "Contact"),
            "The contact of this conversation",
        ),
        Field::rw(
            "taskId",
            "task_id",
            Ty::OptStr,
            "The task of this conversation",
        ),
        Field::rw(
            "spaceId",
            "space_id",
            Ty::OptStr,
            "The space of this conversation",
        ),
        Field::rw(
            "botId",
            "bot_id",
            Ty::Ref("bots", "Bot"),
            "The bot of this conversation",
        ),
        Field::rw(
            "datasetId",
            "dataset_id",
            Ty::Ref("datasets", "Dataset"),
            "The dataset of this conversation",
        ),
        Field::rw(
            "skillsetId",
            "skillset_id",
            Ty::OptStr,
            "The skillset of this conversation",
        ),
        Field::rw(
            "backstory",
            "backstory",
            Ty::OptStr,
            "The backstory of this conversation",
        ),
        Field::rw(
            "model",
            "model",
            Ty::OptStr,
            "The model of this conversation",
        ),
        Field::rw("privacy", "privacy", Ty::Bool(false), "The privacy flag"),
        Field::rw(
            "moderation",
            "moderation",
            Ty::Bool(false),
            "The moderation flag",
        ),
        Field::ro(
            "expiresAt",
            "expires_at",
            Ty::Int(0, i64::MAX),
            "When the conversation's session ends (ms)",
        ),
    ],
    list_filters: &[
        ("botId", "bot_id"),
        ("contactId", "contact_id"),
        ("taskId", "task_id"),
    ],
    list_asc: false,
    has_alias: false,
    required: &[],
};

pub static MESSAGE: Resource = Resource {
    path: "conversation/{conversationId}/message",
    label: "Conversation message",
    table: "messages",
    parent: Some(("conversation_id", &CONVERSATION)),
    fields: &[
        Field::rw(
            "type",
            "type",
            Ty::Enum(MESSAGE_TYPES, "user"),
            "The message type",
        ),
        Field::rw("text", "text", Ty::Text(""), "The message text"),
        Field::wo("name", "name", Ty::Name, "The associated name"),
        Field::wo(
            "description",
            "description",
            Ty::Name,
            "The associated description",
        ),
        META,
    ],
    list_filters: &[],
    list_asc: true,
    has_alias: false,
    required: &["type", "text"],
};

/// Every resource, for lookups such as [`children`].
pub static ALL: [&Resource; 10] = [
    &BLUEPRINT,
    &DATASET,
    &DATASET_RECORD,
    &BOT,
    &TWILIO,
    &CONVERSATIONS,
    &WIDGET,
    &CONTACT,
    &CONVERSATION,
    &MESSAGE,
];

/// The resources nested under `res` (a conversation's messages, a dataset's records), which
/// are deleted with it.
pub fn children(res: &Resource) -> Vec<&'static Resource> {
    ALL.iter()
        .copied()
        .filter(|child| {
            child
                .parent
                .is_some_and(|(_, parent)| std::ptr::eq(parent, res))
        })
        .collect()
}

/// ChatBotKit's message types.
pub const MESSAGE_TYPES: &[&str] = &[
    "user",
    "bot",
    "reasoning",
    "context",
    "instruction",
    "backstory",
    "activity",
    "checkpoint",
];
