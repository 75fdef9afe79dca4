// Drives hearth's media node with the unmodified npm kurento-client 7.3.0:
// strict connect (describe + getInfo), a pipeline, two WebRtcEndpoints with
// the properties OpenVidu sets, processOffer with a real offer, trickle ICE,
// connect, and release. Prints one JSON line with what it saw.
// Usage: node kurento_client.js ws://127.0.0.1:PORT/kurento OFFER_FILE
'use strict';
const fs = require('fs');
const kurento = require('kurento-client');

const [url, offerFile] = process.argv.slice(2);
const offer = fs.readFileSync(offerFile, 'utf8');

function fail(e) {
  console.error('FAIL', (e && e.stack) || e);
  process.exit(1);
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

// The callback form runs kurento-client's strict server check: an error
// here means describe(manager_ServerManager) or getInfo's modules failed.
kurento(url, { failAfter: 1, request_timeout: 10000 }, (err, client) => {
  if (err) return fail(err);
  run(client).then(
    (out) => {
      console.log(JSON.stringify(out));
      client.close();
      process.exit(0);
    },
    fail,
  );
});

async function run(client) {
  const out = {};
  const info = await client.getServerManager().then((m) => m.getInfo());
  out.modules = info.modules.map((m) => m.name);

  const pipeline = await client.create('MediaPipeline');
  out.pipeline = pipeline.id;
  pipeline.on('Error', (e) => fail(e));
  const pub = await pipeline.create('WebRtcEndpoint');
  const sub = await pipeline.create('WebRtcEndpoint');
  out.endpoints = [pub.id, sub.id];

  await pub.setStunServerAddress('127.0.0.1');
  await pub.setStunServerPort(3478);
  await pub.setMaxVideoRecvBandwidth(1000);
  await pub.setName('str_CAM_interop');
  out.name = await pub.getName();

  const candidates = [];
  pub.on('IceCandidateFound', (ev) => candidates.push(ev.candidate));
  const gathered = new Promise((resolve) => pub.on('IceGatheringDone', resolve));
  pub.on('MediaFlowInStateChanged', () => {});

  out.answer = await pub.processOffer(offer);
  await pub.gatherCandidates();
  await gathered;
  out.candidates = candidates.map((c) => c.candidate);

  await pub.connect(sub);
  out.sinks = (await pub.getSinkConnections()).map((c) => c.sink.id || c.sink);

  // An unknown object is a ReferenceError in kurento-client (code 40101).
  try {
    await client.getMediaobjectById(pipeline.id + '/00000000-0000-4000-8000-000000000000_kurento.WebRtcEndpoint');
    out.unknown = 'resolved';
  } catch (e) {
    out.unknown = e.constructor.name + ' ' + (e.code || '');
  }

  // release, then kurento-client unsubscribes the released endpoint's
  // listeners: none of that may surface as an error.
  await pub.release();
  await pipeline.release();
  out.released = true;
  return out;
}
