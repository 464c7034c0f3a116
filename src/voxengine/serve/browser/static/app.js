// The voice page: gets a call token, opens the microphone, connects through the first
// transport that works (WebRTC when its module is present, else WebSocket), and shows
// the live transcript of both sides, the reply latency and the round-trip time.

// "?transport=ws" (or "webrtc") on the page's URL uses that transport only.
const ONLY = new URLSearchParams(window.location.search).get("transport");
const TRANSPORTS = ["./transport-webrtc.js", "./transport-ws.js"].filter(
  (path) => !ONLY || path === `./transport-${ONLY}.js`,
);

const $ = (id) => document.getElementById(id);
const state = { transport: null, micStream: null, muted: false, items: new Map(), pingSent: new Map(),
  resumeToken: null, module: null, ended: false, resuming: false, pings: null };
window.vox = { audioBytes: 0, messages: [], resumes: 0 }; // for tests and debugging
// bye reasons after which the call is over: no resume
const FINAL = new Set(["normal", "time_limit", "unauthorized", "forbidden", "too_many_calls", "slow_caller"]);

function setState(name, text) {
  document.body.dataset.state = name;
  if (text) $("status").textContent = text;
  $("talk").disabled = name !== "idle" && name !== "ended";
  $("hangup").disabled = name !== "connected";
  $("mute").disabled = name !== "connected";
}

function line(itemId, role) {
  let entry = state.items.get(itemId);
  if (!entry) {
    const li = document.createElement("li");
    li.className = role;
    li.dataset.item = itemId;
    $("transcript").append(li);
    entry = { li, text: "" };
    state.items.set(itemId, entry);
  }
  return entry;
}

function onMessage(message) {
  window.vox.messages.push(message.type);
  switch (message.type) {
    case "ready":
      state.resumeToken = message.resume_token || null; // a new one for every connection
      break;
    case "resumed": {
      window.vox.resumes += 1;
      for (const entry of message.transcript || []) {
        const shown = line(entry.item_id, entry.role);
        if (!shown.text) { shown.text = entry.text; shown.li.textContent = entry.text; }
      }
      const lost = [];
      if (message.lost?.user_turn) lost.push("your last words (please repeat them)");
      if (message.lost?.assistant_reply) lost.push("the end of the last reply");
      $("status").textContent = lost.length
        ? `Resumed on another server; lost: ${lost.join(" and ")}.`
        : "Resumed on another server: the conversation goes on.";
      break;
    }
    case "transcript": {
      const entry = line(message.item_id, message.role);
      entry.text = message.final ? message.text : entry.text + message.text;
      entry.li.textContent = entry.text;
      break;
    }
    case "latency":
      $("latency").textContent = `${Math.round(message.first_audio * 1000)} ms`;
      break;
    case "interrupted":
      if (message.item_id && state.items.has(message.item_id)) state.items.get(message.item_id).li.classList.add("interrupted");
      break;
    case "pong": {
      const sent = state.pingSent.get(message.id);
      if (sent !== undefined) $("rtt").textContent = `${Math.round(performance.now() - sent)} ms`;
      for (const id of state.pingSent.keys()) if (id <= message.id) state.pingSent.delete(id); // the line answers
      break;
    }
    case "going_away":
      $("status").textContent = "The server is restarting; the call ends soon.";
      break;
    case "error":
      $("status").textContent = `Provider error: ${message.message}`;
      break;
    case "bye":
      if (FINAL.has(message.reason)) state.ended = true;
      $("status").textContent = `Call ended: ${message.reason}${message.detail ? ` (${message.detail})` : ""}`;
      break;
  }
}

async function token() {
  const response = await fetch("/token", { method: "POST", headers: { "content-type": "application/json" }, body: "{}",
    signal: AbortSignal.timeout(10000) }); // a hung server: fail, do not hang
  if (!response.ok) throw new Error(`no call token (HTTP ${response.status})`);
  return (await response.json()).token;
}

async function connectFirst(options) {
  let lastError = null;
  for (const path of TRANSPORTS) {
    let module;
    try { module = await import(path); } catch { continue; } // transport not installed
    try {
      const transport = await module.connect({ ...options, token: await token() });
      $("transport").textContent = module.name;
      state.module = module;
      return transport;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError || new Error("no transport available");
}

// The transport of a resume attempt: the call's own first; after two failures, every
// available transport in turn (a network that lost WebRTC may still pass a WebSocket).
async function resumeModule(attempt) {
  if (attempt < 2) return state.module;
  const modules = [];
  for (const path of TRANSPORTS) {
    try { modules.push(await import(path)); } catch { /* transport not installed */ }
  }
  return modules.length ? modules[attempt % modules.length] : state.module;
}

// The connection was lost without the call ending (the server died or restarted):
// connect again with the resume token (over WebRTC: in the offer; over WebSocket: in
// the hello); the load balancer picks a live server, which continues the call. Every
// attempt is bounded (each transport's connect() gives up after its own timeout, so a
// server that accepts the connection and never answers costs one attempt, not the
// call), then the next one follows after a growing pause, until the deadline.
async function resume(options) {
  const deadline = performance.now() + 30000;
  let delay = 100;
  let attempt = 0;
  state.resuming = true; // failed attempts close too: their onClose must not resume again
  try {
    while (performance.now() < deadline && state.resumeToken && !state.ended) {
      setState("connecting", "Connection lost: resuming the call…");
      try {
        const module = await resumeModule(attempt++);
        state.transport = await module.connect({ ...options, resumeToken: state.resumeToken });
        state.module = module;
        $("transport").textContent = module.name;
        setState("connected", "Resumed: speak now.");
        startPings();
        return true;
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 1000);
      }
    }
    return false;
  } finally {
    state.resuming = false;
  }
}

async function talk() {
  state.ended = false;
  state.resumeToken = null;
  setState("connecting", "Connecting…");
  try {
    state.micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    const options = {
      baseUrl: window.location.href,
      micStream: state.micStream,
      onMessage,
      onAudio: (bytes) => { window.vox.audioBytes += bytes; },
      onResumeToken: (resumeToken) => { state.resumeToken = resumeToken; },
      onClose: async ({ code, reason }) => {
        if (state.resuming) return; // a failed resume attempt: the loop goes on
        stopPings();
        state.transport = null;
        if (!state.ended && state.resumeToken && state.module && (await resume(options))) return;
        setState("ended", $("status").textContent.startsWith("Call ended") ? null : `Call ended (${reason || code})`);
        state.micStream?.getTracks().forEach((track) => track.stop());
      },
    };
    state.transport = await connectFirst(options);
    setState("connected", "Connected: speak now.");
    startPings();
  } catch (error) {
    setState("ended", `Could not connect: ${error.message}`);
    state.micStream?.getTracks().forEach((track) => track.stop());
  }
}

// One ping loop per call: a ping every PING_SECONDS over the current transport. When
// MAX_UNANSWERED pings in a row get no pong (6 s: a worker that hangs without closing its
// socket, a machine gone without a TCP reset), the line counts as lost: the transport is
// abandoned and its onClose runs the same resume as a closed connection. A resume starts
// a new loop in place of the old one (startPings stops any loop first); so does hang-up.
const PING_SECONDS = 2;
const MAX_UNANSWERED = 3;

function stopPings() {
  if (state.pings !== null) clearInterval(state.pings);
  state.pings = null;
  state.pingSent.clear();
}

function startPings() {
  stopPings();
  let id = 0;
  const tick = () => {
    const transport = state.transport;
    if (!transport) { stopPings(); return; }
    if (state.pingSent.size >= MAX_UNANSWERED) {
      stopPings();
      transport.abandon(`no answer to ${MAX_UNANSWERED} pings`);
      return;
    }
    state.pingSent.set(++id, performance.now());
    transport.send({ type: "ping", id });
  };
  state.pings = setInterval(tick, PING_SECONDS * 1000);
  tick();
}

$("talk").addEventListener("click", talk);
$("hangup").addEventListener("click", () => { state.ended = true; stopPings(); state.transport?.hangUp(); });
$("mute").addEventListener("click", () => {
  state.muted = !state.muted;
  state.transport?.setMuted(state.muted);
  $("mute").setAttribute("aria-pressed", String(state.muted));
  $("mute").textContent = state.muted ? "Unmute" : "Mute";
});
setState("idle");
