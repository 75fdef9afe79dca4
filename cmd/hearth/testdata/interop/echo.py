"""A slixmpp client logs in over STARTTLS, prints READY, and answers the first
chat message with "echo: <body>". Exit status 0 once it has answered.

usage: echo.py HOST PORT USER PASS
"""
import asyncio
import ssl
import sys

import slixmpp

host, port, user, password = sys.argv[1:5]
c = slixmpp.ClientXMPP(user + "@localhost/echo", password)
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
done = asyncio.Event()


async def start(_):
    c.send_presence()
    print("READY", flush=True)


def message(m):
    if m["type"] in ("chat", "normal") and m["body"]:
        print("got", m["from"], m["body"], flush=True)
        c.send_message(mto=m["from"], mbody="echo: " + m["body"], mtype="chat")
        asyncio.get_event_loop().call_later(0.5, done.set)


c.add_event_handler("session_start", start)
c.add_event_handler("message", message)
c.connect((host, int(port)), force_starttls=True)
asyncio.get_event_loop().run_until_complete(asyncio.wait_for(done.wait(), 30))
c.disconnect()
