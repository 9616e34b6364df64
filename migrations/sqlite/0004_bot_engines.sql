-- Bot engine settings (Chatwire additions to the bot resource): the webhook bot's endpoint
-- (JSON text), its signing secret (sealed with CHATWIRE_SECRET_KEY, never read back through
-- the API) and a per-bot fallback text for failed turns.
ALTER TABLE bots ADD COLUMN webhook TEXT;
ALTER TABLE bots ADD COLUMN webhook_secret TEXT;
ALTER TABLE bots ADD COLUMN fallback_text TEXT;
