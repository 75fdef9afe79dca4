"""Three slixmpp users A, B and C against hearth's presence engine (issue 3): the
subscription handshake with roster pushes on both sides, initial presence broadcast
and probe answers (with the last unavailable presence and its delay stamp for an
offline contact), directed presence, a clean logout, an abrupt disconnect (a client
process killed) and a silent one (a client process frozen, so only the server's idle
policy can notice), optionally an offline message delivered at the next login, and
last activity after logout. Every step prints a line; exit status 0 and "presence ok"
mean all passed.

usage: presence.py HOST PORT IDLE_SECONDS OFFLINE(0|1) A PASS_A B PASS_B C PASS_C
"""
import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time

import slixmpp
from slixmpp.exceptions import IqError

host, port, idle, offline = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
ua, pa, ub, pb, uc, pc = sys.argv[5:11]
A, B, C = ua + "@localhost", ub + "@localhost", uc + "@localhost"
here = os.path.dirname(os.path.abspath(__file__))


def step(*args):
    print(*args, flush=True)


def client(jid, password, status):
    c = slixmpp.ClientXMPP(jid, password)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    # Subscriptions are answered by hand, as a person would.
    c.auto_authorize = None
    c.auto_subscribe = False
    c.register_plugin("xep_0012")
    c.register_plugin("xep_0203")
    c.q = asyncio.Queue()
    c.ready = asyncio.Event()

    async def start(_):
        await c.get_roster()
        c.send_presence(pstatus=status)
        c.ready.set()

    c.add_event_handler("session_start", start)
    for ev in ("presence_available", "presence_unavailable", "presence_subscribe",
               "presence_subscribed", "roster_update", "message"):
        c.add_event_handler(ev, lambda s, ev=ev: c.q.put_nowait((ev, s)))
    c.add_event_handler("failed_auth", lambda _: step("auth failed", jid))
    c.connect((host, int(port)), force_starttls=True)
    return c


async def online(jid, password, status=""):
    c = client(jid, password, status)
    await asyncio.wait_for(c.ready.wait(), 20)
    return c


async def expect(c, kind, pred=lambda s: True, timeout=15, what=""):
    """Waits for the next event of kind matching pred, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{c.boundjid}: no {kind} {what}")
        ev, s = await asyncio.wait_for(c.q.get(), left)
        if ev == kind and pred(s):
            return s


def frm(jid):
    return lambda s: str(s["from"]) == jid


def pushed(contact, subs, ask=""):
    """A roster push of contact with one of the subscriptions subs (and ask)."""
    def match(iq):
        if iq["type"] != "set":
            return False
        it = iq["roster"]["items"].get(slixmpp.JID(contact))
        return it is not None and it["subscription"] in subs and (it["ask"] or "") == ask
    return match


def status_of(p):
    return p["status"]


async def handshake(x, y):
    """x asks for y's presence, y approves; pushes checked on both sides."""
    xb, yb = x.boundjid.bare, y.boundjid.bare
    x.send_presence(pto=yb, ptype="subscribe")
    await expect(x, "roster_update", pushed(yb, ("none", "from"), "subscribe"), what="push ask=subscribe")
    await expect(y, "presence_subscribe", frm(xb), what="subscribe")
    y.send_presence(pto=xb, ptype="subscribed")
    await expect(y, "roster_update", pushed(xb, ("from", "both")), what="push from/both")
    await expect(x, "roster_update", pushed(yb, ("to", "both")), what="push to/both")
    await expect(x, "presence_subscribed", frm(yb), what="subscribed")
    # RFC 6121 §3.1.5: the new subscriber hears the approver's presence at once.
    await expect(x, "presence_available", frm(y.boundjid.full), what="approver's presence")


def ghost(jid, password, status):
    p = subprocess.Popen([sys.executable, os.path.join(here, "ghost.py"), host, port, jid, password, status],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "READY":
        p.kill()
        raise AssertionError(f"ghost {jid}: {line!r}")
    return p


async def main():
    a = await online(A + "/a", pa, "A here")
    b = await online(B + "/b", pb, "B here")
    c = await online(C + "/c", pc, "C here")
    step("logged in", a.boundjid, b.boundjid, c.boundjid)

    await handshake(a, b)
    await handshake(b, a)
    await handshake(a, c)
    await handshake(c, a)
    assert a.client_roster[B]["subscription"] == "both", a.client_roster[B]["subscription"]
    assert b.client_roster[A]["subscription"] == "both"
    assert c.client_roster[A]["subscription"] == "both"
    assert B not in c.client_roster.keys() or c.client_roster[B]["subscription"] == "none"
    step("handshakes A<->B, A<->C: both, roster pushes on both sides")

    # Directed presence from B to C, who are not contacts.
    b.send_presence(pto=c.boundjid.full, pstatus="psst, C")
    p = await expect(c, "presence_available", frm(b.boundjid.full), what="directed presence")
    assert status_of(p) == "psst, C", p
    step("directed presence B -> C")

    # Clean logout of B: A (contact) and C (directed target) hear it.
    b.send_presence(ptype="unavailable", pstatus="brb")
    for x in (a, c):
        p = await expect(x, "presence_unavailable", frm(b.boundjid.full), what="B's logout")
        assert status_of(p) == "brb", p
    b.disconnect()
    step("clean logout of B reached A and C")

    # B comes back: A gets the initial broadcast, B the probe answer about A.
    b2 = await online(B + "/b2", pb, "B back")
    p = await expect(a, "presence_available", frm(b2.boundjid.full), what="B's initial presence")
    assert status_of(p) == "B back", p
    p = await expect(b2, "presence_available", frm(a.boundjid.full), what="probe answer about A")
    assert status_of(p) == "A here", p
    step("initial presence of B2 broadcast to A; probe answer about A to B2")

    # C logs out with a status; A logs out and in again: the probe answers give B2's
    # presence and C's last unavailable presence with a delay stamp.
    c.send_presence(ptype="unavailable", pstatus="off to lunch")
    await expect(a, "presence_unavailable", frm(c.boundjid.full), what="C's logout")
    c.disconnect()
    a.send_presence(ptype="unavailable", pstatus="later")
    await expect(b2, "presence_unavailable", frm(a.boundjid.full), what="A's logout")
    a.disconnect()
    a2 = await online(A + "/a2", pa, "A again")
    await expect(b2, "presence_available", frm(a2.boundjid.full), what="A2's initial presence")
    p = await expect(a2, "presence_available", frm(b2.boundjid.full), what="probe answer about B2")
    assert status_of(p) == "B back", p
    p = await expect(a2, "presence_unavailable", frm(C), what="C's last presence")
    assert status_of(p) == "off to lunch", p
    stamp = p["delay"]["stamp"]
    assert stamp is not None and p.xml.find("{urn:xmpp:delay}delay") is not None, p
    step("probe answers to A2: B2 available, C offline since", stamp, "with", repr(status_of(p)))

    # Last activity (XEP-0012) of C, who logged out: seconds and status; forbidden for
    # B2, who has no subscription to C; the server's uptime.
    r = await a2.plugin["xep_0012"].get_last_activity(C)
    assert r["last_activity"]["status"] == "off to lunch", r
    step("last activity of C:", r["last_activity"]["seconds"], "s,", repr(r["last_activity"]["status"]))
    try:
        await b2.plugin["xep_0012"].get_last_activity(C)
        raise AssertionError("B2 learned C's last activity")
    except IqError as e:
        assert e.iq["error"]["condition"] == "forbidden", e.iq
    r = await a2.plugin["xep_0012"].get_last_activity("localhost")
    step("last activity of C forbidden to B2; server up for", r["last_activity"]["seconds"], "s")

    # Abrupt disconnect: C's client process killed; the kernel closes its socket.
    g = ghost(C + "/killed", pc, "about to die")
    await expect(a2, "presence_available", frm(C + "/killed"), what="killed client's presence")
    g.send_signal(signal.SIGKILL)
    g.wait()
    p = await expect(a2, "presence_unavailable", frm(C + "/killed"), what="synthesized unavailable")
    step("killed client: A2 got", repr(status_of(p)))
    assert status_of(p) == "Disconnected: connection lost", p

    # Silent disconnect: C's client frozen with its socket open, as after a network
    # drop; the server's idle policy (ping at idle/2, give up at idle) notices.
    g = ghost(C + "/frozen", pc, "about to freeze")
    await expect(a2, "presence_available", frm(C + "/frozen"), what="frozen client's presence")
    g.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        p = await expect(a2, "presence_unavailable", frm(C + "/frozen"), timeout=idle + 15,
                         what="synthesized unavailable after the idle timeout")
    finally:
        g.send_signal(signal.SIGKILL)
        g.wait()
    step(f"frozen client: A2 got {status_of(p)!r} after {time.monotonic() - t0:.1f}s (idle.timeout {idle:g}s)")
    assert status_of(p) == "Disconnected: connection timed out", p
    r = await a2.plugin["xep_0012"].get_last_activity(C)
    assert r["last_activity"]["status"] == "Disconnected: connection timed out", r
    step("last activity of C after the timeout:", repr(r["last_activity"]["status"]))

    if offline:
        # An offline message to C, delivered at its next login with a delay stamp.
        a2.send_message(mto=C, mbody="while you were out", mtype="chat")
        # A round trip after it: the server handles a session's stanzas in order, so
        # the message has been stored when the answer comes.
        await a2.plugin["xep_0012"].get_last_activity(C)
        c2 = client(C + "/c2", pc, "C back")
        m = await expect(c2, "message", lambda m: m["body"] == "while you were out", what="offline message")
        assert m.xml.find("{urn:xmpp:delay}delay") is not None, m
        step("offline message delivered at the next login, stamped", m["delay"]["stamp"])
        c2.disconnect()

    for x in (a2, b2):
        x.disconnect()
    step("presence ok")


asyncio.get_event_loop().run_until_complete(main())
