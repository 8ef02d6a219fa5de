// The dictation page: microphone -> AudioWorklet -> 16 kHz pcm16 -> WebSocket /v1/stream.
// The server sends {"type": "partial"} (redrawn in place) and {"type": "final"} (kept, with
// its start and end). An API key, if the server needs one, is taken from ?api_key= in the URL.

const TARGET_RATE = 16000; // what the models consume
const SEND_SECONDS = 0.1; // audio per WebSocket frame: 100 ms, as asr dictate reads it
const PCM16_SCALE = 32767;

const $ = (id) => document.getElementById(id);
let session = null;

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds % 60).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

// Linear-interpolation resampler that carries its position across blocks (used only when the
// browser will not open an AudioContext at 16 kHz itself).
class Resampler {
  constructor(fromRate, toRate) {
    this.step = fromRate / toRate;
    this.pos = 0;
    this.last = 0;
  }
  process(block) {
    const out = [];
    while (this.pos < block.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i === 0 ? this.last : block[i - 1];
      const b = block[i];
      out.push(a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= block.length;
    this.last = block[block.length - 1];
    return Float32Array.from(out);
  }
}

function toPcm16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    pcm[i] = Math.max(-1, Math.min(1, samples[i])) * PCM16_SCALE;
  }
  return pcm.buffer;
}

function show(message) {
  if (message.type === "partial") {
    $("partial").textContent = message.text;
  } else if (message.type === "final") {
    const item = document.createElement("li");
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = `${clock(message.start)}–${clock(message.end)}`;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(time, text);
    $("segments").append(item);
    $("partial").textContent = "";
  } else if (message.type === "error") {
    $("status").textContent = `error: ${message.message}`;
  } else if (message.type === "ready") {
    $("status").textContent = "listening";
  }
}

async function openAudio() {
  const media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  let context;
  try {
    context = new AudioContext({ sampleRate: TARGET_RATE });
  } catch (err) {
    context = new AudioContext(); // resampled below instead
  }
  const key = new URLSearchParams(location.search).get("api_key");
  await context.audioWorklet.addModule("/static/capture-worklet.js" + (key ? `?api_key=${encodeURIComponent(key)}` : ""));
  const source = context.createMediaStreamSource(media);
  const node = new AudioWorkletNode(context, "capture");
  source.connect(node);
  return { media, context, node };
}

async function start() {
  $("start").disabled = true;
  const key = new URLSearchParams(location.search).get("api_key");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/stream` + (key ? `?api_key=${encodeURIComponent(key)}` : "");
  const audio = await openAudio();
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const resampler = audio.context.sampleRate === TARGET_RATE ? null : new Resampler(audio.context.sampleRate, TARGET_RATE);
  let pending = [];
  let pendingLength = 0;
  socket.onopen = () => {
    socket.send(JSON.stringify({ sample_rate: TARGET_RATE, format: "pcm16" }));
    audio.node.port.onmessage = (event) => {
      const block = resampler ? resampler.process(event.data) : event.data;
      pending.push(block);
      pendingLength += block.length;
      if (pendingLength >= SEND_SECONDS * TARGET_RATE && socket.readyState === WebSocket.OPEN) {
        const joined = new Float32Array(pendingLength);
        let offset = 0;
        for (const b of pending) { joined.set(b, offset); offset += b.length; }
        socket.send(toPcm16(joined));
        pending = [];
        pendingLength = 0;
      }
    };
  };
  socket.onmessage = (event) => show(JSON.parse(event.data));
  socket.onclose = () => { $("status").textContent = "stopped"; stopAudio(audio); $("start").disabled = false; $("stop").disabled = true; };
  session = { socket, audio };
  $("stop").disabled = false;
}

function stopAudio(audio) {
  audio.node.port.onmessage = null;
  audio.media.getTracks().forEach((t) => t.stop());
  audio.context.close();
}

function stop() {
  if (session && session.socket.readyState === WebSocket.OPEN) {
    session.socket.send(JSON.stringify({ type: "end" }));
  }
  $("stop").disabled = true;
}

async function copyText() {
  const text = [...document.querySelectorAll("#segments .text")].map((e) => e.textContent).join(" ");
  try {
    await navigator.clipboard.writeText(text);
    $("status").textContent = "copied";
  } catch (err) {
    $("status").textContent = "copy failed: the browser refused the clipboard";
  }
}

$("start").addEventListener("click", () => start().catch((err) => { $("status").textContent = `error: ${err.message}`; $("start").disabled = false; }));
$("stop").addEventListener("click", stop);
$("copy").addEventListener("click", copyText);
