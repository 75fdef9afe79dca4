// The test page's script, bundled with esbuild around the unmodified npm
// openvidu-browser 2.32.2. It exposes window.hearth for js/browser.js: join a
// session with a token and publish the fake camera, subscribe to every remote
// stream, record the session's events, report WebRTC statistics.
import { OpenVidu } from 'openvidu-browser';

const hearth = {
  events: [],
  subscribers: [],
  session: null,
  publisher: null,

  async join(token, name, relay) {
    const OV = new OpenVidu();
    OV.enableProdMode();
    if (relay) {
      // Relay-only ICE, keeping the TURN servers the joinRoom result carries.
      OV.setAdvancedConfiguration({ rtcConfiguration: { iceTransportPolicy: 'relay' } });
    }
    const session = OV.initSession();
    this.session = session;
    const record = (type) => (e) => {
      const conn = e.connection || (e.stream && e.stream.connection);
      this.events.push({ type, connectionId: conn ? conn.connectionId : null, reason: e.reason || null, data: conn ? conn.data : null });
    };
    for (const t of ['connectionCreated', 'connectionDestroyed', 'streamCreated', 'streamDestroyed', 'sessionDisconnected']) {
      session.on(t, record(t));
    }
    session.on('streamCreated', (e) => {
      this.subscribers.push(session.subscribe(e.stream, document.getElementById('remote')));
    });
    session.on('exception', (e) => this.events.push({ type: 'exception', reason: e.name, data: e.message }));
    await session.connect(token, name);
    const pub = await OV.initPublisherAsync(document.getElementById('local'), {
      publishAudio: true, publishVideo: true, resolution: '320x240', frameRate: 15, mirror: false,
    });
    await session.publish(pub);
    this.publisher = pub;
    return { connectionId: session.connection.connectionId, role: session.connection.role };
  },

  leave() {
    this.session.disconnect();
  },

  // For each subscriber: video frames decoded and the selected candidate
  // pair's types; for the publisher: frames encoded and its pair.
  async stats() {
    const pairOf = (report) => {
      let pair = null;
      report.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      if (!pair) {
        report.forEach((s) => {
          if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
        });
      }
      if (!pair) return { local: null, remote: null };
      const l = report.get(pair.localCandidateId);
      const r = report.get(pair.remoteCandidateId);
      return { local: l && l.candidateType, remote: r && r.candidateType };
    };
    const subs = [];
    for (const sub of this.subscribers) {
      const pc = sub.stream.getRTCPeerConnection();
      if (!pc) continue;
      const report = await pc.getStats();
      let frames = 0;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded || 0;
      });
      subs.push({ from: sub.stream.connection.connectionId, framesDecoded: frames, ...pairOf(report) });
    }
    let pub = null;
    if (this.publisher && this.publisher.stream.getRTCPeerConnection()) {
      const report = await this.publisher.stream.getRTCPeerConnection().getStats();
      let frames = 0;
      report.forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') frames = s.framesEncoded || 0;
      });
      pub = { framesEncoded: frames, ...pairOf(report) };
    }
    return { subscribers: subs, publisher: pub };
  },
};
window.hearth = hearth;
