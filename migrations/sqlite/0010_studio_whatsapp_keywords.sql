-- Carrier keywords (STOP, START, HELP ...) are an SMS rule; an integration may opt in to
-- applying them to WhatsApp too (default off: the words reach the bot, as on Twilio).
ALTER TABLE twilio_integrations ADD COLUMN whatsapp_keywords INTEGER NOT NULL DEFAULT 0;
