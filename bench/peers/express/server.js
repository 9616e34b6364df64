// The Node quickstart, as Twilio's docs write it: Express, twilio.webhook() to verify the
// signature, a session kept in memory, the reply as inline TwiML. The bench drives it with the
// same load generator and signed webhooks as Chatwire (PORT and TWILIO_AUTH_TOKEN from the bench).
const express = require('express');
const twilio = require('twilio');

const app = express();
app.use(express.urlencoded({ extended: false }));
const sessions = new Map();

app.get('/healthz', (_req, res) => res.send('ok'));
app.post(
  '/v1/integration/twilio/:id/webhook',
  twilio.webhook({ protocol: 'http' }),
  (req, res) => {
    const from = req.body.From;
    const session = sessions.get(from) || { count: 0 };
    session.count += 1;
    sessions.set(from, session);
    const twiml = new twilio.twiml.MessagingResponse();
    twiml.message(req.body.Body || '');
    res.type('text/xml').send(twiml.toString());
  },
);

app.listen(Number(process.env.PORT), '127.0.0.1');
