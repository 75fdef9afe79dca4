"""Two slixmpp clients log in to hearth (one over STARTTLS, one over direct TLS)
and exchange messages both ways. Exit status 0 means every message arrived.

usage: chat.py HOST STARTTLS_PORT TLS_PORT USER1 PASS1 USER2 PASS2
"""
import asyncio
import logging
import ssl
import sys

import slixmpp

host, port, tls_port, u1, p1, u2, p2 = sys.argv[1:8]
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")


def client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    # hearth's self-signed test certificate.
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.received = asyncio.Queue()
    c.ready = asyncio.Event()

    async def start(_):
        c.send_presence()
        try:
            await c.get_roster()
        except slixmpp.exceptions.IqError as e:
            print("roster:", e.condition, file=sys.stderr)
        c.ready.set()

    c.add_event_handler("session_start", start)
    c.add_event_handler("message", lambda m: c.received.put_nowait(m))
    c.add_event_handler("failed_auth", lambda _: print("auth failed", jid))
    return c


async def expect(c, body):
    while True:
        m = await asyncio.wait_for(c.received.get(), 15)
        if m["body"] == body:
            return m


async def main():
    a = client(u1 + "@localhost/starttls", p1)
    b = client(u2 + "@localhost/directtls", p2)
    a.connect((host, int(port)), force_starttls=True)
    b.connect((host, int(tls_port)), use_ssl=True)
    await asyncio.wait_for(asyncio.gather(a.ready.wait(), b.ready.wait()), 20)
    a.send_message(mto=b.boundjid.full, mbody="hello over starttls", mtype="chat")
    m = await expect(b, "hello over starttls")
    assert str(m["from"]) == a.boundjid.full, m["from"]
    b.send_message(mto=a.boundjid.bare, mbody="hello over direct tls", mtype="chat")
    m = await expect(a, "hello over direct tls")
    assert str(m["from"]) == b.boundjid.full, m["from"]
    # Security: a spoofed 'from' is replaced by the sender's real JID.
    msg = a.make_message(mto=b.boundjid.full, mbody="spoof", mtype="chat")
    msg["from"] = "admin@localhost/x"
    msg.send()
    m = await expect(b, "spoof")
    assert str(m["from"]) == a.boundjid.full, m["from"]
    print("chat ok", a.boundjid.full, b.boundjid.full)
    a.disconnect()
    b.disconnect()


asyncio.get_event_loop().run_until_complete(main())
