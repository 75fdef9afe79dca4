// Headless Chromium publishes its fake camera to one WebRtcEndpoint of
// hearth's media node, a second page receives it through a connected
// endpoint; signalling goes through the unmodified npm kurento-client.
// Prints one JSON line: the subscriber's framesDecoded samples and the
// candidate types of the selected pairs.
// Usage: node chromium.js PAGE_URL WS_URL ICE_SERVERS_JSON POLICY(all|relay)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const kurento = require('kurento-client');

const [pageURL, wsURL, iceJSON, policy] = process.argv.slice(2);
const iceServers = JSON.parse(iceJSON);

function fail(e) {
  console.error('FAIL', (e && e.stack) || e);
  process.exit(1);
}
process.on('unhandledRejection', fail);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Only loopback candidates reach the node: the test network is loopback.
const allowed = (c) => / 127\.0\.0\.1 /.test(c);

async function wire(page, ep, publish) {
  await page.exposeFunction('onLocalCandidate', (json) => {
    const c = JSON.parse(json);
    if (allowed(c.candidate)) ep.addIceCandidate(kurento.getComplexType('IceCandidate')(c)).catch(fail);
  });
  ep.on('IceCandidateFound', (ev) => {
    const c = ev.candidate;
    page.evaluate((x) => window.addCandidate(x), { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex }).catch(fail);
  });
  await page.goto(pageURL);
  const offer = await page.evaluate(([s, p, pub]) => window.makePeer(s, p, pub), [iceServers, policy, publish]);
  const answer = await ep.processOffer(offer);
  await page.evaluate((a) => window.setAnswer(a), answer);
  await ep.gatherCandidates();
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      // The node offers loopback candidates only; Chromium ignores those
      // without this flag (see video.md, notes on loopback testing).
      '--allow-loopback-in-peer-connection',
    ],
  });
  const client = await kurento(wsURL, { failAfter: 1 });
  const pipeline = await client.create('MediaPipeline');
  const pubEp = await pipeline.create('WebRtcEndpoint');
  const subEp = await pipeline.create('WebRtcEndpoint');
  const pubPage = await ctx.newPage();
  const subPage = await ctx.newPage();
  await wire(pubPage, pubEp, true);
  await wire(subPage, subEp, false);
  await pubEp.connect(subEp);

  const samples = [];
  let last = { framesDecoded: 0 };
  for (let i = 0; i < 60; i++) {
    await sleep(500);
    last = await subPage.evaluate(() => window.videoStats());
    samples.push(last.framesDecoded);
    const grew = samples.filter((v, j) => j > 0 && v > samples[j - 1]).length;
    if (last.framesDecoded > 0 && grew >= 4) break;
  }
  const pub = await pubPage.evaluate(() => window.videoStats());
  console.log(JSON.stringify({
    framesDecoded: samples,
    subscriber: { local: last.local, remote: last.remote },
    publisher: { local: pub.local, remote: pub.remote, framesEncoded: pub.framesEncoded },
  }));
  await pipeline.release();
  client.close();
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
})().catch(fail);
