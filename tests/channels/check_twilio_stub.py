"""Twilio's own Python library against the tests' Twilio stub: what the stub answers must be
what the library reads from Twilio (message resources, error codes), and what the library
sends (form bodies, basic auth) must be what the stub accepts.

    check_twilio_stub.py STUB_URL ACCOUNT_SID AUTH_TOKEN FROM
"""

import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def main(url, account, token, sender):
    client = Client(account, token)
    client.api.base_url = url.rstrip("/")

    sent = client.messages.create(to="+33612345678", from_=sender, body="Votre code Car Rental est 123456.")
    assert sent.sid.startswith("SM") and len(sent.sid) == 34, sent.sid
    assert sent.status == "queued", sent.status
    assert sent.to == "+33612345678" and sent.from_ == sender, (sent.to, sent.from_)
    assert sent.body.endswith("123456."), sent.body
    assert sent.num_segments == "1", sent.num_segments
    assert sent.date_created is not None, "an RFC 2822 date the library parses"
    fetched = client.messages(sent.sid).fetch()
    assert fetched.sid == sent.sid and fetched.body == sent.body

    with_service = client.messages.create(to="+33612345678", messaging_service_sid="MG" + "0" * 32, body="hi")
    assert with_service.messaging_service_sid == "MG" + "0" * 32

    for number, code in [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614), ("0612", 21211)]:
        try:
            client.messages.create(to=number, from_=sender, body="x")
        except TwilioRestException as e:
            assert e.status == 400 and e.code == code, (number, e.status, e.code, e.msg)
        else:
            raise AssertionError(f"{number} was accepted")

    try:
        client.messages.create(to="+33612345678", from_=sender, body="")
    except TwilioRestException as e:
        assert e.code == 21602, e.code
    else:
        raise AssertionError("an empty body was accepted")

    wrong = Client(account, "not-the-token")
    wrong.api.base_url = url.rstrip("/")
    try:
        wrong.messages.create(to="+33612345678", from_=sender, body="x")
    except TwilioRestException as e:
        assert e.status == 401 and e.code == 20003, (e.status, e.code)
    else:
        raise AssertionError("a wrong token was accepted")

    try:
        client.messages("SM" + "f" * 32).fetch()
    except TwilioRestException as e:
        assert e.status == 404, e.status
    else:
        raise AssertionError("an unknown message was found")
    print("twilio-python reads the stub as it reads Twilio")


if __name__ == "__main__":
    main(*sys.argv[1:5])
