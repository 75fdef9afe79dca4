"""Two slixmpp clients: alice blocks bob with XEP-0191 (slixmpp's xep_0191),
bob's message to her bounces with service-unavailable and never arrives,
alice's message to bob bounces with not-acceptable and <blocked/>; after the
unblock, messages flow again. Exit status 0 and "block ok" mean all held.

usage: block.py HOST PORT USER1 PASS1 USER2 PASS2
"""
import asyncio
import logging
import ssl
import sys

import slixmpp

host, port, u1, p1, u2, p2 = sys.argv[1:7]
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")


def client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    for p in ("xep_0030", "xep_0191", "xep_0199"):
        c.register_plugin(p)
    c.received = asyncio.Queue()
    c.errors = asyncio.Queue()
    c.pushes = asyncio.Queue()
    c.ready = asyncio.Event()

    def start(_):
        c.send_presence()
        c.ready.set()

    c.add_event_handler("session_start", start)
    c.add_event_handler("message", lambda m: m["type"] != "error" and c.received.put_nowait(m))
    c.add_event_handler("message_error", lambda m: c.errors.put_nowait(m))
    c.add_event_handler("blocked", lambda iq: c.pushes.put_nowait(("blocked", iq)))
    c.add_event_handler("unblocked", lambda iq: c.pushes.put_nowait(("unblocked", iq)))
    return c


async def main():
    a = client(u1 + "@localhost/a", p1)
    b = client(u2 + "@localhost/b", p2)
    a.connect((host, int(port)), force_starttls=True)
    b.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(asyncio.gather(a.ready.wait(), b.ready.wait()), 20)

    info = await a["xep_0030"].get_info(jid="localhost")
    assert "urn:xmpp:blocking" in info["disco_info"]["features"], info
    iq = await a["xep_0191"].get_blocked()
    assert len(iq["blocklist"]["items"]) == 0, iq
    await a["xep_0191"].block(b.boundjid.bare)
    kind, push = await asyncio.wait_for(a.pushes.get(), 10)
    assert kind == "blocked" and slixmpp.JID(b.boundjid.bare) in push["block"]["items"], push
    iq = await a["xep_0191"].get_blocked()
    assert slixmpp.JID(b.boundjid.bare) in iq["blocklist"]["items"], iq

    b.send_message(mto=a.boundjid.bare, mbody="can you hear me?", mtype="chat")
    err = await asyncio.wait_for(b.errors.get(), 10)
    assert err["error"]["condition"] == "service-unavailable", err
    a.send_message(mto=b.boundjid.bare, mbody="blocked you", mtype="chat")
    err = await asyncio.wait_for(a.errors.get(), 10)
    assert err["error"]["condition"] == "not-acceptable", err
    assert "urn:xmpp:blocking:errors" in str(err), err
    # Both answered in order: nothing crossed the block.
    await a["xep_0199"].send_ping("localhost", timeout=10)
    await b["xep_0199"].send_ping("localhost", timeout=10)
    assert a.received.empty() and b.received.empty(), (a.received, b.received)

    await a["xep_0191"].unblock(b.boundjid.bare)
    kind, _ = await asyncio.wait_for(a.pushes.get(), 10)
    assert kind == "unblocked", kind
    b.send_message(mto=a.boundjid.bare, mbody="hello again", mtype="chat")
    m = await asyncio.wait_for(a.received.get(), 10)
    assert m["body"] == "hello again", m
    print("block ok")
    a.disconnect()
    b.disconnect()


asyncio.get_event_loop().run_until_complete(main())
