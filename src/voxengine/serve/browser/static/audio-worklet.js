// AudioWorklet processors for the voice page: microphone capture and reply playback.
// Both run on the audio rendering thread; they talk to the page through their ports.

// Capture: Float32 input -> Int16 frames of `frameSamples`, posted as transferable buffers.
class VoxCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frameSamples = options.processorOptions.frameSamples;
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.muted = false;
    this.port.onmessage = (event) => { if ("muted" in event.data) this.muted = event.data.muted; };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const sample = this.muted ? 0 : Math.max(-1, Math.min(1, channel[i]));
      this.frame[this.filled++] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
      if (this.filled === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

// Playback: a queue of Int16 chunks played in order. `played` counts only samples of
// real audio output (not underrun silence) since the last clear, per epoch, and is
// reported every `reportSamples` so the server truncates at what was actually heard.
class VoxPlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.queue = [];
    this.offset = 0;
    this.epoch = 0;
    this.played = 0;
    this.sinceReport = 0;
    this.reportSamples = options.processorOptions.reportSamples;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.type === "audio") {
        this.queue.push(new Int16Array(data.buffer));
      } else if (data.type === "clear") {
        this.queue = [];
        this.offset = 0;
        this.epoch = data.epoch;
        this.played = 0;
        this.port.postMessage({ type: "played", epoch: this.epoch, samples: 0 });
      }
    };
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.queue.length > 0) {
      const chunk = this.queue[0];
      const take = Math.min(out.length - written, chunk.length - this.offset);
      for (let i = 0; i < take; i++) out[written + i] = chunk[this.offset + i] / 0x8000;
      written += take;
      this.offset += take;
      if (this.offset >= chunk.length) { this.queue.shift(); this.offset = 0; }
    }
    out.fill(0, written);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (written > 0) {
      this.played += written;
      this.sinceReport += written;
      if (this.sinceReport >= this.reportSamples || this.queue.length === 0) {
        this.sinceReport = 0;
        this.port.postMessage({ type: "played", epoch: this.epoch, samples: this.played });
      }
    }
    return true;
  }
}

registerProcessor("vox-capture", VoxCapture);
registerProcessor("vox-playback", VoxPlayback);
