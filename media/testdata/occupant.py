"""A slixmpp occupant of a MUC room asks the room for a video token
(urn:xmpp:hearth:video:0) and prints it; then it follows commands on stdin.

Prints "TOKEN <role> <url>" once joined with a token; on the line "leave" it
leaves the room and prints "LEFT"; on "quit" (or end of input) it disconnects.

usage: occupant.py HOST PORT USER PASS ROOM NICK
"""
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp.xmlstream import ET as SET

host, port, user, password, room, nick = sys.argv[1:7]
NS = "urn:xmpp:hearth:video:0"
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")


async def main():
    c = slixmpp.ClientXMPP(user + "@localhost/occupant", password)
    # hearth's self-signed test certificate.
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.register_plugin("xep_0045")
    ready = asyncio.Event()

    async def start(_):
        c.send_presence()
        ready.set()

    c.add_event_handler("session_start", start)
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(ready.wait(), 20)

    muc = c.plugin["xep_0045"]
    await asyncio.wait_for(muc.join_muc_wait(room, nick), 20)
    # An instant room for whoever created it (XEP-0045 §10.1.2); others get
    # forbidden, which is fine.
    cfg = c.make_iq_set(ito=room)
    q = SET.Element("{http://jabber.org/protocol/muc#owner}query")
    x = SET.SubElement(q, "{jabber:x:data}x")
    x.set("type", "submit")
    cfg.append(q)
    try:
        await cfg.send(timeout=20)
    except slixmpp.exceptions.IqError:
        pass

    iq = c.make_iq_get(ito=room)
    iq.append(SET.Element("{%s}token" % NS))
    res = await iq.send(timeout=20)
    tok = res.xml.find("{%s}token" % NS)
    url = tok.find("{%s}url" % NS).text
    print("TOKEN", tok.get("role"), url, flush=True)

    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "leave":
            muc.leave_muc(room, nick)
            print("LEFT", flush=True)
        elif line in ("quit", ""):
            break
    try:
        await asyncio.wait_for(c.disconnect(), 5)
    except Exception:
        pass


asyncio.get_event_loop().run_until_complete(main())
