"""Three slixmpp clients (XEP-0045 plugin) use hearth's MUC service.

Phase "before": alice creates and configures a persistent room, talks
before the others arrive (history), bob and carol join and receive that
history, everyone exchanges groupchat and private messages, the subject is
set, bob becomes a member, carol is kicked, rejoins, is banned and can no
longer enter.

Phase "after" (run after hearth restarted on the same data): the room, its
configuration, subject and affiliations are still there; alice destroys the
room with a reason and an alternate venue and bob sees it go.

usage: muc.py HOST PORT PHASE ALICE BOB CAROL   (the password of each user is USER-pw)
Prints "muc PHASE ok" on success; any failed check raises.
"""
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp.exceptions import PresenceError

host, port, phase, *users = sys.argv[1:]
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
ROOM = slixmpp.JID("interop@conference.localhost")
TIMEOUT = 15


def client(user):
    c = slixmpp.ClientXMPP(user + "@localhost/py", user + "-pw")
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.register_plugin("xep_0030")
    c.register_plugin("xep_0045")
    c.register_plugin("xep_0199")
    c.ready = asyncio.Event()
    c.presences = asyncio.Queue()
    c.messages = asyncio.Queue()
    c.subjects = asyncio.Queue()

    async def start(_):
        # No get_roster: the roster handler arrives with another issue.
        c.send_presence()
        c.ready.set()

    c.add_event_handler("session_start", start)
    c.add_event_handler("groupchat_presence", lambda p: c.presences.put_nowait(p))
    c.add_event_handler("message", lambda m: c.messages.put_nowait(m))
    c.add_event_handler("groupchat_subject", lambda m: c.subjects.put_nowait(m))
    return c


def muc(c):
    return c.plugin["xep_0045"]


async def expect(queue, what, pred):
    """The next item of queue matching pred (others are skipped)."""
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("timed out waiting for " + what)
        if pred(item):
            return item


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def say(sender, body, *receivers):
    sender.send_message(mto=ROOM, mbody=body, mtype="groupchat")
    for r in (sender,) + receivers:
        m = await expect(r.messages, "groupchat " + body,
                         lambda m: m["type"] == "groupchat" and m["body"] == body)
        check(m["from"] == slixmpp.JID(ROOM.bare + "/" + muc(sender).our_nicks[ROOM]), "from of " + body)


async def before(alice, bob, carol):
    # alice creates the room: 201, then configures it (reserved room, §10.1.3).
    pres, _, _, _ = await muc(alice).join_muc_wait(ROOM, "Alice", maxstanzas=0, timeout=TIMEOUT)
    codes = pres["muc"]["status_codes"]
    check({110, 201} <= codes, "creation codes %s" % codes)
    check(pres["muc"]["affiliation"] == "owner" and pres["muc"]["role"] == "moderator", "creator is owner")
    form = await muc(alice).get_room_config(ROOM)
    fields = form.get_fields()
    for var in ("muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_membersonly",
                "muc#roomconfig_whois", "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_maxusers"):
        check(var in fields, "form field " + var)
    form.set_values({
        "muc#roomconfig_roomname": "Interop room",
        "muc#roomconfig_roomdesc": "slixmpp against hearth",
        "muc#roomconfig_persistentroom": True,
        "muc#roomconfig_publicroom": True,
        "muc#roomconfig_historylength": "10",
    })
    await muc(alice).set_room_config(ROOM, form)
    info = await alice.plugin["xep_0030"].get_info(jid=ROOM)
    features = info["disco_info"]["features"]
    check("muc_persistent" in features and "muc_public" in features and "muc_semianonymous" in features,
          "room features %s" % features)

    # History: said before the others came.
    await say(alice, "before you came 1")
    await say(alice, "before you came 2")
    pres, _, occupants, history = await muc(bob).join_muc_wait(ROOM, "Bob", maxstanzas=10, timeout=TIMEOUT)
    check([m["body"] for m in history] == ["before you came 1", "before you came 2"],
          "bob's history %s" % [m["body"] for m in history])
    check(all(m["delay"]["stamp"] is not None for m in history), "delay stamps")
    # slixmpp counts its own presence among the occupants.
    check({p["muc"]["nick"] for p in occupants} == {"Alice", "Bob"}, "bob sees alice: %s" % [p["muc"]["nick"] for p in occupants])
    pres, _, _, history = await muc(carol).join_muc_wait(ROOM, "Carol", maxstanzas=1, timeout=TIMEOUT)
    check([m["body"] for m in history] == ["before you came 2"], "carol's history (maxstanzas=1)")
    check(set(muc(carol).get_roster(ROOM)) == {"Alice", "Bob", "Carol"}, "carol's roster")

    # Subject (§8.1), groupchat, private messages (§7.5).
    muc(alice).set_subject(ROOM, "Interop testing")
    for c in (bob, carol):
        await expect(c.subjects, "subject", lambda m: m["subject"] == "Interop testing")
    await say(bob, "hello from bob", alice, carol)
    carol.send_message(mto=ROOM.bare + "/Bob", mbody="psst bob", mtype="chat")
    m = await expect(bob.messages, "private message", lambda m: m["body"] == "psst bob")
    check(m["from"] == slixmpp.JID(ROOM.bare + "/Carol") and m["type"] == "chat", "pm from %s" % m["from"])
    bob.send_message(mto=ROOM.bare + "/Carol", mbody="psst carol", mtype="chat")
    m = await expect(carol.messages, "private reply", lambda m: m["body"] == "psst carol")
    check(m["from"] == slixmpp.JID(ROOM.bare + "/Bob"), "pm reply from")

    # XEP-0410 self-ping.
    await carol.plugin["xep_0199"].ping(jid=ROOM.bare + "/Carol", timeout=TIMEOUT)

    # Membership (stored with the room), then kick (§8.2) and ban (§9.1).
    await muc(alice).set_affiliation(ROOM, "member", jid=bob.boundjid.bare)
    await muc(alice).set_role(ROOM, "Carol", "none", reason="testing kicks")
    p = await expect(carol.presences, "kick", lambda p: p["type"] == "unavailable" and p["from"].resource == "Carol")
    check({307, 110} <= p["muc"]["status_codes"], "kick codes %s" % p["muc"]["status_codes"])
    check(p["muc"]["item"]["reason"] == "testing kicks", "kick reason")
    await expect(bob.presences, "kick seen", lambda p: p["type"] == "unavailable" and 307 in p["muc"]["status_codes"])
    await muc(carol).join_muc_wait(ROOM, "Carol", maxstanzas=0, timeout=TIMEOUT)
    await muc(alice).set_affiliation(ROOM, "outcast", jid=carol.boundjid.bare, reason="testing bans")
    p = await expect(carol.presences, "ban", lambda p: p["type"] == "unavailable" and p["from"].resource == "Carol")
    check(301 in p["muc"]["status_codes"], "ban codes %s" % p["muc"]["status_codes"])
    try:
        await muc(carol).join_muc_wait(ROOM, "Carol", maxstanzas=0, timeout=TIMEOUT)
        raise AssertionError("banned carol entered")
    except PresenceError as e:
        check(e.condition == "forbidden", "ban error " + e.condition)
    members = await muc(alice).get_affiliation_list(ROOM, "member")
    check(members == [bob.boundjid.bare], "member list %s" % members)


async def after(alice, bob, carol):
    info = await bob.plugin["xep_0030"].get_info(jid=ROOM)
    names = {ident[3] for ident in info["disco_info"]["identities"]}
    check(names == {"Interop room"}, "restored name %s" % names)
    check("muc_persistent" in info["disco_info"]["features"], "restored persistence")
    pres, subject, _, _ = await muc(alice).join_muc_wait(ROOM, "Alice", maxstanzas=0, timeout=TIMEOUT)
    check(pres["muc"]["affiliation"] == "owner" and 201 not in pres["muc"]["status_codes"], "owner again, no 201")
    check(subject["subject"] == "Interop testing", "restored subject %r" % subject["subject"])
    members = await muc(alice).get_affiliation_list(ROOM, "member")
    outcasts = await muc(alice).get_affiliation_list(ROOM, "outcast")
    check(members == [bob.boundjid.bare] and outcasts == [carol.boundjid.bare], "restored affiliations %s %s" % (members, outcasts))
    pres, _, _, _ = await muc(bob).join_muc_wait(ROOM, "Bob", maxstanzas=0, timeout=TIMEOUT)
    check(pres["muc"]["affiliation"] == "member", "bob still a member")
    try:
        await muc(carol).join_muc_wait(ROOM, "Carol", maxstanzas=0, timeout=TIMEOUT)
        raise AssertionError("banned carol entered after the restart")
    except PresenceError as e:
        check(e.condition == "forbidden", "ban after restart " + e.condition)

    # Destruction (§10.9) with a reason and an alternate venue.
    await muc(alice).destroy(ROOM, reason="done testing", altroom=slixmpp.JID("elsewhere@conference.localhost"))
    p = await expect(bob.presences, "destroy", lambda p: p["type"] == "unavailable")
    check(p["muc"]["destroy"]["reason"] == "done testing", "destroy reason")
    check(p["muc"]["destroy"]["jid"] == slixmpp.JID("elsewhere@conference.localhost"), "alternate venue")
    try:
        await bob.plugin["xep_0030"].get_info(jid=ROOM)
        raise AssertionError("destroyed room still answers")
    except slixmpp.exceptions.IqError as e:
        check(e.condition == "item-not-found", "destroyed room: " + e.condition)


async def main():
    clients = [client(u) for u in users]
    for c in clients:
        c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 30)
    await {"before": before, "after": after}[phase](*clients)
    print("muc", phase, "ok")
    for c in clients:
        c.disconnect()


asyncio.get_event_loop().run_until_complete(main())
