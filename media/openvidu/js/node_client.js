// Drives hearth's REST API with the unmodified npm openvidu-node-client 2.32.2
// and prints one JSON line with what the library saw.
// Usage: node node_client.js URL SECRET
'use strict';
const { OpenVidu } = require('openvidu-node-client');

const [url, secret] = process.argv.slice(2);

function fail(e) {
  console.error('FAIL', (e && e.stack) || e);
  process.exit(1);
}
process.on('unhandledRejection', fail);

(async () => {
  const out = {};
  const bad = new OpenVidu(url, secret + 'x');
  out.wrongSecret = await bad.createSession().then(() => 'accepted', (e) => e.message);

  const ov = new OpenVidu(url, secret);
  const s1 = await ov.createSession({ customSessionId: 'nodeclient' });
  out.custom = { id: s1.sessionId, createdAt: s1.createdAt, mode: s1.properties.mediaMode };
  // A second create with the same id gets the 409 and fetches the session.
  const again = await ov.createSession({ customSessionId: 'nodeclient' });
  out.again = { id: again.sessionId, createdAt: again.createdAt };
  const s2 = await ov.createSession();
  out.generated = s2.sessionId;

  const c1 = await s1.createConnection({ role: 'PUBLISHER', data: 'alice' });
  const c2 = await s1.createConnection();
  out.c1 = { id: c1.connectionId, status: c1.status, role: c1.connectionProperties.role, data: c1.connectionProperties.data, token: c1.token };
  out.c2 = { id: c2.connectionId, role: c2.connectionProperties.role, record: c2.connectionProperties.record };
  out.legacyToken = await s1.generateToken({ role: 'SUBSCRIBER' });

  out.fetchChanged = await s1.fetch();
  out.connections = s1.connections.map((c) => ({ id: c.connectionId, status: c.status, role: c.connectionProperties.role }));
  out.active = s1.activeConnections.length;
  await ov.fetch();
  // createSession pushes a second copy of a session it got a 409 for.
  out.sessions = [...new Set(ov.activeSessions.map((s) => s.sessionId))].sort();

  const up = await s1.updateConnection(c1.connectionId, { role: 'MODERATOR', record: false });
  out.updated = { role: up.connectionProperties.role, record: up.connectionProperties.record };

  await s1.forceDisconnect(c2);
  await s1.fetch();
  out.afterDisconnect = s1.connections.map((c) => c.connectionId);

  out.unknownSession = await ov.createSession({ customSessionId: 'bad id!' }).then(() => 'accepted', (e) => e.message);

  await s1.close();
  await s2.close();
  await ov.fetch();
  out.afterClose = ov.activeSessions.length;
  console.log(JSON.stringify(out));
})().catch(fail);
