import { PreparedH264Decoder } from '@camstream/ffmpeg';

/**
 * The receiver's launcher calls this first, before it loads the app (this file is bundled on its
 * own, as dist/decoder-ahead.js: a few milliseconds to load). ffmpeg needs about 130 ms here to
 * start (it loads some two hundred libraries), and the app about 70 ms to load and more to
 * connect: a decoder process started now is ready when an H.264 stream's first keyframe arrives,
 * so that a joiner's first picture does not wait for ffmpeg. The app hands it to its first TCP
 * sender's H.264 decoder, or ends it: at once when no TCP sender is watched (NATS, the tutorial
 * wire, a usage error), at the hello of a stream in another encoding, at the latest when the run
 * ends. Ended unused, it has cost one ffmpeg start (about 0.1 s of CPU).
 */
export function startDecoderAhead(): PreparedH264Decoder {
  return new PreparedH264Decoder();
}
