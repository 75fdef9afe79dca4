"""slixmpp sends a chat message to a user who is offline, then logs the user in:
the message must arrive after its initial presence, with an XEP-0203 delay
stamp from the server. Exit status 0 and "offline ok" mean it did.

usage: offline.py HOST PORT SENDER PASS RECIPIENT PASS
"""
import asyncio
import datetime
import logging
import ssl
import sys

import slixmpp

host, port, u1, p1, u2, p2 = sys.argv[1:7]
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
BODY = "stored while you were away"


def client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    # hearth's self-signed test certificate.
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    for p in ("xep_0030", "xep_0199", "xep_0203"):
        c.register_plugin(p)
    c.received = asyncio.Queue()
    c.ready = asyncio.Event()

    def start(_):
        c.send_presence()
        c.ready.set()

    c.add_event_handler("session_start", start)
    c.add_event_handler("message", lambda m: c.received.put_nowait(m))
    c.add_event_handler("failed_auth", lambda _: print("auth failed", jid))
    return c


async def main():
    sender = client(u1 + "@localhost/desk", p1)
    sender.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(sender.ready.wait(), 20)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    sender.send_message(mto=u2 + "@localhost", mbody=BODY, mtype="chat")
    # The server answers in order: once the ping is answered, the message is stored.
    await sender["xep_0199"].send_ping("localhost", timeout=10)

    rcpt = client(u2 + "@localhost/phone", p2)
    rcpt.connect((host, int(port)), force_starttls=True)
    m = await asyncio.wait_for(rcpt.received.get(), 20)
    assert m["body"] == BODY, m
    assert str(m["from"]) == sender.boundjid.full, m["from"]
    stamp = m["delay"]["stamp"]
    assert isinstance(stamp, datetime.datetime), m
    assert str(m["delay"]["from"]) == "localhost", m["delay"]["from"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert before <= stamp <= now, (before, stamp, now)
    print("offline ok", stamp.isoformat(), m["delay"]["text"])
    sender.disconnect()
    rcpt.disconnect()


asyncio.get_event_loop().run_until_complete(main())
