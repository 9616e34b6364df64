-- Issue 10: who wrote in a shared thread, and a template chosen per call.
--
-- A Twilio Conversation is one thread (`chat:CH...`) that several people may write in; the
-- inbound row keeps the participant who wrote (`+1555...`, `whatsapp:+1555...` or a chat
-- identity), so contacts are collected by the person's address and Studio's
-- `trigger.conversation.Author` / `Source` name the participant, not the thread.
ALTER TABLE inbound ADD COLUMN author TEXT;

-- The approved template (`{"contentSid": "HX...", "contentVariables": {...}}`) a row goes out
-- as when it would leave outside WhatsApp's 24-hour window, given with the call that wrote it
-- (`initiate`, `flow/execute`); the integration's `whatsappTemplate` otherwise.
ALTER TABLE outbox ADD COLUMN template TEXT;
