// The WebSocket transport (protocol version 1, see docs/serving-design.md): mic audio is
// captured by an AudioWorklet and sent as binary PCM16 frames; reply audio is played by
// an AudioWorklet that reports the played position back ("played" messages).
//
// Transport interface (what app.js expects of every transport module):
//   export const name;                       // shown on the page
//   export async function connect(options) -> transport
//     options: { baseUrl, token, micStream, onMessage(msg), onClose({code, reason}),
//                onAudio(byteCount) (optional: reply audio received),
//                resumeToken (optional: continue a call whose connection was lost),
//                onResumeToken(token) (optional: a resume token arrived before "ready") }
//   transport.setMuted(bool); transport.send(msgObject); transport.hangUp();
//   transport.abandon(reason);               // the line is dead although not closed (no
//                                            // pong): close it here, onClose runs at once

export const name = "WebSocket";

const RATE = 24000; // one rate both ways: the AudioContext resamples the microphone
// socket opened to "ready": a server (or load balancer) that accepts the TCP connection
// but never answers would otherwise hold connect() for good (Chromium waits minutes)
const CONNECT_SECONDS = 10;
const FRAME_SECONDS = 0.02;
const REPORT_SECONDS = 0.05;

export async function connect({ baseUrl, token, micStream, onMessage, onClose, onAudio = () => {}, resumeToken = null }) {
  const context = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
  await context.audioWorklet.addModule(new URL("./audio-worklet.js", import.meta.url));
  const capture = new AudioWorkletNode(context, "vox-capture", {
    processorOptions: { frameSamples: Math.round(RATE * FRAME_SECONDS) },
  });
  const playback = new AudioWorkletNode(context, "vox-playback", {
    processorOptions: { reportSamples: Math.round(RATE * REPORT_SECONDS) },
    outputChannelCount: [1],
  });
  const source = context.createMediaStreamSource(micStream);
  source.connect(capture);
  playback.connect(context.destination);
  await context.resume();

  const url = new URL("/ws", baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let ready = false;
  let closed = false;

  const send = (message) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  };
  const shutdown = (code, reason) => {
    if (closed) return;
    closed = true;
    source.disconnect();
    capture.disconnect();
    playback.disconnect();
    context.close();
    onClose({ code, reason });
  };

  capture.port.onmessage = (event) => {
    if (ready && ws.readyState === WebSocket.OPEN) ws.send(event.data);
  };
  playback.port.onmessage = (event) => {
    const data = event.data;
    if (data.type === "played") send({ type: "played", epoch: data.epoch, seconds: data.samples / RATE });
  };

  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error("WebSocket did not connect in time"));
      ws.onopen = ws.onerror = ws.onclose = ws.onmessage = null;
      ws.close(); // a socket still connecting is failed at once, no closing handshake
      shutdown(1006, "connect timeout");
    }, CONNECT_SECONDS * 1000);
    ws.onopen = () => send({
      type: "hello", protocol: 1, token: resumeToken ? "" : token,
      input_sample_rate: RATE, output_sample_rate: RATE,
      resume_token: resumeToken, metadata: {},
    });
    ws.onerror = () => reject(new Error("WebSocket failed"));
    ws.onclose = (event) => {
      clearTimeout(timer);
      reject(new Error(event.reason || `closed (${event.code})`));
      shutdown(event.code, event.reason);
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") {
        onAudio(event.data.byteLength);
        playback.port.postMessage({ type: "audio", buffer: event.data }, [event.data]);
        return;
      }
      const message = JSON.parse(event.data);
      if (message.type === "ready") { ready = true; clearTimeout(timer); resolve(); }
      if (message.type === "clear") playback.port.postMessage({ type: "clear", epoch: message.epoch });
      onMessage(message);
    };
  });

  return {
    name,
    setMuted(muted) { capture.port.postMessage({ muted }); },
    send,
    hangUp() { send({ type: "bye" }); },
    abandon(reason) {
      // a hung server never answers the closing handshake: do not wait for it
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(4000, "no answer");
      shutdown(1006, reason);
    },
  };
}
