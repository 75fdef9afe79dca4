"""slixmpp with XEP-0198 enabled: log in, lose the TCP connection abruptly,
reconnect and resume the same session (no new session_start), then receive a
message sent while it was away. Prints "resumed ok".

usage: resume.py HOST PORT USER PASS
"""
import asyncio
import ssl
import sys

import slixmpp

host, port, user, password = sys.argv[1:5]
c = slixmpp.ClientXMPP(user + "@localhost/sm", password)
c.register_plugin("xep_0198")
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
enabled, resumed, got = asyncio.Event(), asyncio.Event(), asyncio.Event()
starts = []


def start(_):
    starts.append(1)
    c.send_presence()


c.add_event_handler("session_start", start)
c.add_event_handler("sm_enabled", lambda _: enabled.set())
c.add_event_handler("session_resumed", lambda _: resumed.set())
c.add_event_handler("message", lambda m: got.set() if m["body"] == "while away" else None)


async def main():
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(enabled.wait(), 20)
    print("READY", c.boundjid.full, flush=True)
    # The Go side sends "while away" after we drop the line.
    await asyncio.sleep(0.5)
    dropped = asyncio.Event()
    c.add_event_handler("disconnected", lambda _: dropped.set())
    c.transport.abort()
    await asyncio.wait_for(dropped.wait(), 10)
    print("DROPPED", flush=True)
    # Reconnecting with a stream id in hand makes xep_0198 send <resume/>.
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(resumed.wait(), 30)
    await asyncio.wait_for(got.wait(), 20)
    assert len(starts) == 1, starts
    print("resumed ok", flush=True)
    c.disconnect()


asyncio.get_event_loop().run_until_complete(main())
