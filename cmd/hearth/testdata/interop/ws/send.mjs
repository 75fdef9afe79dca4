// @xmpp/client (xmpp.js) logs in to hearth over WebSocket (RFC 7395), sends a
// chat message, waits for the answer, and exits 0 when it arrives.
// usage: node send.mjs WS_URL USER PASSWORD TO BODY EXPECTED_REPLY
import WebSocket from "ws";

// Node 20 has no global WebSocket (Node 22 does); xmpp.js expects one.
globalThis.WebSocket ??= WebSocket;
const { client, xml } = await import("@xmpp/client");

const [url, username, password, to, body, expected] = process.argv.slice(2);
const xmpp = client({ service: url, domain: "localhost", username, password, resource: "xmppjs" });
const timer = setTimeout(() => { console.error("timeout"); process.exit(2); }, 30000);
xmpp.on("error", (err) => { console.error("error", err.toString()); process.exit(1); });
xmpp.on("stanza", async (st) => {
  if (st.is("message") && st.getChildText("body") === expected) {
    console.log("reply from", st.attrs.from);
    clearTimeout(timer);
    await xmpp.stop();
    process.exit(0);
  }
});
xmpp.on("online", async (address) => {
  console.log("online as", address.toString());
  await xmpp.send(xml("presence"));
  await xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, body)));
});
await xmpp.start();
