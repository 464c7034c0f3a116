// The WebRTC transport (docs/webrtc.md): the microphone track goes straight into an
// RTCPeerConnection, so the browser's echo cancellation, noise suppression and jitter
// buffer apply; the reply arrives as a remote audio track played by an <audio> element;
// control messages are the WebSocket protocol's JSON, on a data channel named "events".
//
// Signaling is one POST (non-trickle ICE): gather candidates, send the complete offer
// to /rtc/offer with the call token, apply the complete answer. Played-position reports
// are not sent: the server counts what it handed to the encoder.
//
// Same interface as transport-ws.js (see there). connect() rejects when the server has
// no WebRTC endpoint or the connection does not come up in time, so app.js falls back
// to the WebSocket transport.
//
// Resume: with options.resumeToken the offer carries "resume_token" instead of a call
// token, and any worker behind the load balancer continues the call. The answer brings
// the next resume token (options.onResumeToken), so a resume whose peer connection then
// fails can be tried again. A dead server sends no close over UDP, and Chromium takes
// several seconds to call the connection "disconnected"; but the server's reply track
// sends a packet every 20 ms (silence included), so the call counts as lost when no
// reply packet has arrived for LOST_SECONDS, when the connection stays "disconnected"
// that long, or when it fails.

export const name = "WebRTC";

const GATHER_SECONDS = 3; // ICE gathering: host candidates come at once; STUN may take longer
const SIGNAL_SECONDS = 10; // the offer's POST answered: a hung server must not hold it
const CONNECT_SECONDS = 10; // answer to "ready" on the data channel
const STATS_SECONDS = 0.25;
const LOST_SECONDS = 2; // no reply packet, or "disconnected", this long: the server is gone

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_SECONDS * 1000); // use what was gathered so far
  });
}

export async function connect({ baseUrl, token, micStream, onMessage, onClose, onAudio = () => {},
  resumeToken = null, onResumeToken = () => {} }) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const channel = pc.createDataChannel("events");
  const mic = micStream.getAudioTracks();
  for (const track of mic) pc.addTrack(track, micStream);
  if (mic.length === 0) pc.addTransceiver("audio", { direction: "recvonly" });

  const player = document.createElement("audio");
  player.autoplay = true;
  player.hidden = true;
  document.body.append(player);
  pc.ontrack = (event) => {
    player.srcObject = event.streams[0] || new MediaStream([event.track]);
    player.play().catch(() => {}); // autoplay policies: the Talk click normally allows it
  };

  let closed = false;
  let ready = false;
  let statsTimer = null;
  let lostTimer = null;
  const shutdown = (code, reason) => {
    if (closed) return;
    closed = true;
    clearInterval(statsTimer);
    clearTimeout(lostTimer);
    pc.close();
    player.srcObject = null;
    player.remove();
    if (ready) onClose({ code, reason });
  };
  const send = (message) => {
    if (channel.readyState === "open") channel.send(JSON.stringify(message));
  };

  // Reply audio, as the browser decoded and played it: getStats counters (exposed for
  // tests as window.vox.rtc); onAudio gets the PCM16 byte count of sound (not silence).
  let last = { samples: 0, energy: 0, packets: 0, packetAt: performance.now() };
  const stats = async () => {
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "audio") return;
      const packets = s.packetsReceived || 0;
      if (packets > last.packets) last.packetAt = performance.now();
      else if (performance.now() - last.packetAt > LOST_SECONDS * 1000) shutdown(1006, "connection lost");
      last.packets = packets;
      const samples = s.totalSamplesReceived || 0;
      const energy = s.totalAudioEnergy || 0;
      if (energy - last.energy > 1e-6 && samples > last.samples) onAudio(2 * (samples - last.samples));
      last.samples = samples;
      last.energy = energy;
      window.vox = window.vox || {};
      window.vox.rtc = {
        packetsReceived: s.packetsReceived,
        samplesReceived: samples,
        audioEnergy: energy,
        concealedSamples: s.concealedSamples,
        jitterBufferDelay: s.jitterBufferEmittedCount ? s.jitterBufferDelay / s.jitterBufferEmittedCount : null,
      };
    });
  };

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(new URL("/rtc/offer", baseUrl), {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(SIGNAL_SECONDS * 1000),
      body: JSON.stringify(resumeToken
        ? { type: "offer", sdp: pc.localDescription.sdp, resume_token: resumeToken, metadata: {} }
        : { type: "offer", sdp: pc.localDescription.sdp, token, metadata: {} }),
    });
    if (!response.ok) {
      let error = `HTTP ${response.status}`;
      try { error = (await response.json()).error || error; } catch { /* not JSON */ }
      throw new Error(`WebRTC refused: ${error}`);
    }
    const answer = await response.json();
    if (answer.resume_token) onResumeToken(answer.resume_token);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });

    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("WebRTC did not connect in time")), CONNECT_SECONDS * 1000);
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") { clearTimeout(timer); reject(new Error("WebRTC connection failed")); }
        if (ready && (pc.connectionState === "failed" || pc.connectionState === "closed")) shutdown(1006, "connection lost");
        clearTimeout(lostTimer);
        if (ready && pc.connectionState === "disconnected") {
          lostTimer = setTimeout(() => shutdown(1006, "connection lost"), LOST_SECONDS * 1000);
        }
      };
      channel.onclose = () => { clearTimeout(timer); reject(new Error("data channel closed")); shutdown(1000, "closed"); };
      channel.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        const message = JSON.parse(event.data);
        if (message.type === "ready" && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
        onMessage(message);
        if (message.type === "bye") setTimeout(() => shutdown(1000, message.reason), 200);
      };
    });
  } catch (error) {
    shutdown(1006, String(error));
    throw error;
  }
  last.packetAt = performance.now();
  statsTimer = setInterval(() => { stats().catch(() => {}); }, STATS_SECONDS * 1000);

  return {
    name,
    setMuted(muted) { for (const track of mic) track.enabled = !muted; },
    send,
    hangUp() {
      send({ type: "bye" });
      setTimeout(() => shutdown(1000, "hang-up"), 1000); // the server's bye normally comes first
    },
    abandon(reason) { shutdown(1006, reason); },
  };
}
