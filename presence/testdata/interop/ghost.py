"""A slixmpp client that logs in, sends available presence with a status, says
READY on stdout and then waits forever: the test kills it (SIGKILL: the kernel closes
the socket) or freezes it (SIGSTOP: the socket stays open and silent, as after a
network drop), to see what its contacts are told.

usage: ghost.py HOST PORT JID PASSWORD STATUS
"""
import asyncio
import ssl
import sys

import slixmpp

host, port, jid, password, status = sys.argv[1:6]
c = slixmpp.ClientXMPP(jid, password)
c.ssl_context.check_hostname = False
c.ssl_context.verify_mode = ssl.CERT_NONE
# No keepalive of its own: only the server's idle policy may notice it is gone.
c.whitespace_keepalive = False


async def start(_):
    await c.get_roster()
    c.send_presence(pstatus=status)
    print("READY", flush=True)


c.add_event_handler("session_start", start)
c.connect((host, int(port)), force_starttls=True)
asyncio.get_event_loop().run_forever()
