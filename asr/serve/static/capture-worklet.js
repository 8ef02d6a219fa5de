// Runs on the audio thread: copies each 128-sample render quantum of the microphone to the
// page, which batches, resamples and sends them. Nothing is computed here, so nothing is late.
class CaptureProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("capture", CaptureProcessor);
