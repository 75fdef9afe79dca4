// Drives headless Chromium pages running the unmodified openvidu-browser
// (bundled into the test page) for the Go tests. Commands arrive on stdin, one
// JSON object per line; each answer is one stdout line "<what> <page> <json>".
//   {"cmd":"join","page":"A","token":"...","name":"alice"}    -> joined A {connectionId, role}
//   {"cmd":"decoding","page":"A","from":"con_..."}            -> decoding A {stats}
//       (waits until frames decoded from that connection grew over 4 samples)
//   {"cmd":"event","page":"B","type":"connectionDestroyed","connectionId":"con_..."} -> event B {event}
//   {"cmd":"leave","page":"A"}                                -> left A {}
//   {"cmd":"quit"}
// Usage: node browser.js PAGE_URL RELAY(true|false)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const [pageURL, relayArg] = process.argv.slice(2);
const relay = relayArg === 'true';

function fail(e) {
  console.log('FAIL ' + JSON.stringify(String((e && e.stack) || e)));
  process.exit(1);
}
process.on('unhandledRejection', fail);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-openvidu-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      // Everything runs on loopback, which Chromium leaves out of ICE without this.
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const pages = {};
  const page = async (name) => {
    if (!pages[name]) {
      const p = await ctx.newPage();
      p.on('console', (m) => { if (m.type() === 'error') console.log('console ' + name + ' ' + JSON.stringify(m.text())); });
      p.on('response', (r) => { if (r.status() >= 400) console.log('http ' + name + ' ' + r.status() + ' ' + JSON.stringify(r.url())); });
      p.on('pageerror', (e) => console.log('pageerror ' + name + ' ' + JSON.stringify(String(e))));
      await p.goto(pageURL);
      pages[name] = p;
    }
    return pages[name];
  };
  const out = (what, name, v) => console.log(what + ' ' + name + ' ' + JSON.stringify(v));

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    if (c.cmd === 'quit') break;
    const p = await page(c.page);
    switch (c.cmd) {
      case 'join':
        out('joined', c.page, await p.evaluate(([t, n, r]) => window.hearth.join(t, n, r), [c.token, c.name, relay]));
        break;
      case 'decoding': {
        const samples = [];
        let last = null;
        for (let i = 0; i < 120; i++) {
          await sleep(500);
          last = await p.evaluate(() => window.hearth.stats());
          const s = last.subscribers.find((x) => x.from === c.from);
          samples.push(s ? s.framesDecoded : 0);
          const grew = samples.filter((v, j) => j > 0 && v > samples[j - 1]).length;
          if (samples[samples.length - 1] > 0 && grew >= 4) break;
        }
        out('decoding', c.page, { samples, stats: last });
        break;
      }
      case 'event': {
        let ev = null;
        for (let i = 0; i < 120 && !ev; i++) {
          ev = await p.evaluate(([t, id]) => window.hearth.events.find((e) => e.type === t && (!id || e.connectionId === id)) || null, [c.type, c.connectionId]);
          if (!ev) await sleep(250);
        }
        out('event', c.page, { event: ev, all: await p.evaluate(() => window.hearth.events) });
        break;
      }
      case 'leave':
        await p.evaluate(() => window.hearth.leave());
        out('left', c.page, {});
        break;
      default:
        fail('unknown command ' + line);
    }
  }
  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
})().catch(fail);
