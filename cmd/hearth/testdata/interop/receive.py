"""A slixmpp client logs in over STARTTLS, says READY on stdout, and waits for
one message with the expected body. Exit status 0 when it arrives.

usage: receive.py HOST PORT USER PASS BODY
"""
import asyncio
import ssl
import sys

import slixmpp

host, port, user, password, body = sys.argv[1:6]
c = slixmpp.ClientXMPP(user + "@localhost/recv", password)
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
got = asyncio.Event()


async def start(_):
    c.send_presence()
    try:
        await c.get_roster()
    except slixmpp.exceptions.IqError as e:
        print("roster:", e.condition, file=sys.stderr)
    print("READY", flush=True)


def message(m):
    if m["body"] == body:
        print("got", m["from"], flush=True)
        got.set()


c.add_event_handler("session_start", start)
c.add_event_handler("message", message)
c.connect((host, int(port)), force_starttls=True)
asyncio.get_event_loop().run_until_complete(asyncio.wait_for(got.wait(), 30))
c.disconnect()
