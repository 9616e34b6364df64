"""The Python quickstart, as Twilio's docs write it: Flask, RequestValidator on every webhook, a
session kept in memory, the reply as inline TwiML, served by Flask's own threaded server
(`app.run`). The bench drives it with the same load generator as Chatwire."""
import os

from flask import Flask, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
sessions = {}


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/v1/integration/twilio/<integration>/webhook")
def webhook(integration):
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(request.url, request.form, signature):
        abort(403)
    session = sessions.setdefault(request.form.get("From", ""), {"count": 0})
    session["count"] += 1
    reply = MessagingResponse()
    reply.message(request.form.get("Body", ""))
    return str(reply), 200, {"Content-Type": "text/xml"}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
