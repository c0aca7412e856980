// moodlens live page: camera (and optional microphone) -> /v1/stream -> boxes, mood, timeline, content.
//
// Protocol: every binary message we send (a JPEG frame, or a WAV chunk of
// microphone audio) gets exactly one JSON reply, in order: {type: "frame"},
// {type: "voice"} (voice: null when a chunk holds no speech) or {type: "error"}.
// At most one frame is in flight, so a slow server lowers the frame rate
// instead of building a queue.

const COLOURS = {
  angry: "#e53935", disgust: "#8e24aa", fear: "#5e35b1", happy: "#fdd835", sad: "#1e88e5",
  surprise: "#fb8c00", neutral: "#9e9e9e", calm: "#26a69a", contempt: "#6d4c41", boredom: "#78909c",
};
const MAX_FPS = 10;            // frames sent per second, at most
const FRAME_WIDTH = 640;       // frames are scaled down to this width before sending
const AUDIO_SECONDS = 3;       // microphone audio is sent in chunks this long
const TIMELINE_SECONDS = 60;

const $ = (id) => document.getElementById(id);

// Read by the browser test and handy in the console: what the page has shown.
const state = { frames: 0, sessions: 0, contentHistory: [], timeline: [], lastReply: null, voice: null };
window.moodlens = state;

let socket = null;
let stream = null;
let audio = null;
let frameInFlight = false;
let pumping = false;
let retryMs = 1000;  // reconnect delay after a dropped connection, doubled up to 10 s
let lastSent = 0;
let roundTrips = [];
const pending = [];  // kinds of the messages awaiting a reply, in order

$("origin").textContent = location.origin;
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
// A hidden tab sends no frames, so the service closes its idle session: reopen it on return.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && stream && !socket) connect();
});

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("consent").hidden = false;
  $("live").hidden = true;
}

async function start() {
  $("error").hidden = true;
  const wantMic = $("use-mic").checked;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: wantMic ? { channelCount: 1, echoCancellation: true, noiseSuppression: true } : false,
    });
  } catch (err) {
    showError(`The camera${wantMic ? " or microphone" : ""} could not be opened: ${err.message || err.name}. ` +
              "Nothing was sent.");
    return;
  }
  $("video").srcObject = stream;
  $("consent").hidden = true;
  $("live").hidden = false;
  connect();
  if (wantMic) startMicrophone().catch((err) => setStatus(`microphone off: ${err.message}`));
}

function stop() {
  if (socket) socket.close();
  socket = null;
  if (audio) audio.context.close();
  audio = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("overlay").replaceChildren();
  $("live").hidden = true;
  $("consent").hidden = false;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  socket = ws;
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => onReply(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (socket !== ws) return;  // an older connection, already replaced or stopped
    socket = null;
    frameInFlight = false;
    pending.length = 0;
    if (!stream) return;  // the user pressed Stop
    setStatus(`disconnected${event.reason ? ": " + event.reason : ""}; reconnecting`);
    if (event.code === 1008) return;  // refused by policy (origin): retrying cannot help
    setTimeout(() => {
      if (stream && !socket && document.visibilityState === "visible") connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
  ws.onerror = () => setStatus("connection error");
}

function onReply(msg) {
  if (msg.type === "ready") {
    retryMs = 1000;
    state.sessions += 1;
    buildLegend(msg.labels);
    if (!pumping) {
      pumping = true;
      requestAnimationFrame(pump);
    }
    return;
  }
  const kind = pending.shift();
  if (kind === "frame") {
    frameInFlight = false;
    roundTrips.push(performance.now() - lastSent);
    if (roundTrips.length > 20) roundTrips.shift();
  }
  if (msg.type === "frame") onFrame(msg);
  else if (msg.type === "voice") onVoice(msg.voice);
  else if (msg.type === "error") setStatus(`server: ${msg.detail}`);
}

// Send the next frame when the previous one has been answered, at most MAX_FPS a second.
function pump() {
  if (!socket) {
    pumping = false;
    return;
  }
  const video = $("video");
  const due = performance.now() - lastSent >= 1000 / MAX_FPS;
  if (!frameInFlight && due && socket.readyState === WebSocket.OPEN && video.videoWidth > 0) {
    frameInFlight = true;
    lastSent = performance.now();
    sendFrame(video);
  }
  requestAnimationFrame(pump);
}

const grab = document.createElement("canvas");
function sendFrame(video) {
  const scale = Math.min(1, FRAME_WIDTH / video.videoWidth);
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  grab.toBlob((blob) => {
    if (!blob || !socket || socket.readyState !== WebSocket.OPEN) { frameInFlight = false; return; }
    pending.push("frame");
    socket.send(blob);
  }, "image/jpeg", 0.8);
}

function onFrame(msg) {
  state.frames += 1;
  state.lastReply = msg;
  drawBoxes(msg.faces, msg.size);
  showMood(msg.mood);
  showContent(msg.content);
  addToTimeline(msg.t, msg.mood);
  const ms = roundTrips.reduce((a, b) => a + b, 0) / Math.max(1, roundTrips.length);
  setStatus(`${msg.faces.length} face${msg.faces.length === 1 ? "" : "s"} · ${Math.round(ms)} ms per frame` +
            (audio ? " · microphone on" : ""));
}

// Boxes are in the pixels of the frame we sent; the video element may be shown at another size.
function drawBoxes(faces, size) {
  const overlay = $("overlay");
  const sx = overlay.clientWidth / size[0];
  const sy = overlay.clientHeight / size[1];
  overlay.replaceChildren(...faces.map((face) => {
    const [x, y, w, h] = face.box;
    const box = document.createElement("div");
    box.className = "face-box";
    box.dataset.label = face.label;
    box.style.cssText = `left:${x * sx}px;top:${y * sy}px;width:${w * sx}px;height:${h * sy}px;` +
                        `border-color:${COLOURS[face.label] || "#0c0"}`;
    const tag = document.createElement("span");
    tag.className = "face-label";
    tag.style.background = COLOURS[face.label] || "#0c0";
    tag.textContent = `#${face.track} ${face.label} ${face.score.toFixed(2)}`;
    box.append(tag);
    return box;
  }));
}

function showMood(mood) {
  $("mood-label").textContent = mood.label ? `${mood.label} ${mood.score.toFixed(2)}` : "no face or voice";
  const rows = Object.entries(mood.scores).sort((a, b) => b[1] - a[1]);
  $("mood-bars").replaceChildren(...rows.flatMap(([label, p]) => {
    const name = document.createElement("span");
    name.textContent = label;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.cssText = `width:${Math.max(1, p * 100)}%;background:${COLOURS[label] || "#888"}`;
    const value = document.createElement("span");
    value.textContent = p.toFixed(2);
    return [name, bar, value];
  }));
  const parts = Object.entries(mood.weights).map(([m, w]) => `${m} ${Math.round(w * 100)}%`);
  $("mood-sources").textContent = parts.length ? `from ${parts.join(", ")}` : (mood.notes || []).join("; ");
}

function showContent(choice) {
  const panel = $("content");
  if (panel.dataset.item !== choice.item_id) {
    state.contentHistory.push(choice.item_id);
    panel.dataset.item = choice.item_id;
    const item = choice.item;
    $("content-kind").textContent = item.kind || "";
    $("content-title").textContent = item.title;
    $("content-body").textContent = item.body || "";
    const theme = item.theme || {};
    panel.style.background = theme.background || "";
    panel.style.borderColor = theme.accent || "";
  }
  $("content-why").textContent = choice.mood
    ? `shown for mood ${choice.mood} (score ${choice.score.toFixed(2)})`
    : "default: no rule of the policy holds";
}

function addToTimeline(t, mood) {
  state.timeline.push({ t, label: mood.label, score: mood.score });
  while (state.timeline.length && state.timeline[0].t < t - TIMELINE_SECONDS) state.timeline.shift();
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const x = (s) => ((s - (t - TIMELINE_SECONDS)) / TIMELINE_SECONDS) * canvas.width;
  state.timeline.forEach((p, i) => {
    if (!p.label) return;
    const next = state.timeline[i + 1];
    const right = next ? x(next.t) : canvas.width;
    const h = canvas.height * p.score;
    ctx.fillStyle = COLOURS[p.label] || "#888";
    ctx.fillRect(x(p.t), canvas.height - h, Math.max(1, right - x(p.t)), h);
  });
}

function buildLegend(labels) {
  $("legend").replaceChildren(...labels.map((label) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLOURS[label] || "#888";
    item.append(swatch, label);
    return item;
  }));
}

// voice is null for a chunk without speech: state.voice keeps the last speech heard.
function onVoice(voice) {
  if (!voice) {
    setStatus("voice: no speech");
    return;
  }
  state.voice = voice;
  if (voice.label) setStatus(`voice: ${voice.label} ${voice.score.toFixed(2)}`);
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- microphone: 16 kHz mono PCM in AUDIO_SECONDS chunks, sent as WAV -------------------------

async function startMicrophone() {
  const context = new AudioContext({ sampleRate: 16000 });
  await context.audioWorklet.addModule("mic-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "mic-chunker", {
    processorOptions: { chunkSamples: AUDIO_SECONDS * context.sampleRate },
  });
  node.port.onmessage = (event) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    pending.push("voice");
    socket.send(wav(event.data, context.sampleRate));
  };
  source.connect(node);
  audio = { context, node };
}

// Float samples in [-1, 1] -> a 16-bit PCM mono WAV file.
function wav(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  samples.forEach((s, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, s)) * 0x7fff, true));
  return buffer;
}
