import { H264Encoder, type H264EncoderOptions } from '@camstream/ffmpeg';
import type { RawImage } from '@camstream/media';
import { H264Rungs, LOWER_RUNG_VBV_MS } from './h264-rungs';

const WIDTH = 640;
const HEIGHT = 480;
const BITRATE = 2_000_000;

/** Noise: as hard to compress as a picture gets, so that only the VBV buffer bounds a keyframe. */
function noise(seed: number): RawImage {
  const data = Buffer.alloc(WIDTH * HEIGHT * 3);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return { width: WIDTH, height: HEIGHT, channels: 3, data };
}

describe('H264Rungs', () => {
  it('bounds the keyframes of the rungs below rung 0 by a short VBV buffer, so that they cross a slow link quickly', async () => {
    const started: H264EncoderOptions[] = [];
    const rungs = new H264Rungs({
      width: WIDTH,
      height: HEIGHT,
      fps: 30,
      bitrate: BITRATE,
      // The real encoder, each start noted.
      startEncoder: (options) => {
        started.push(options);
        return new H264Encoder(options);
      },
    });
    try {
      const keyframes = new Map<number, number>();
      for (let i = 0; i < 3; i++) {
        const encoded = rungs.encodeEach(noise(i), [0, 2]);
        for (const [rung, pending] of encoded) {
          const frame = await pending;
          if (frame?.chain?.keyframe && !keyframes.has(rung)) keyframes.set(rung, frame.payload.length);
        }
      }
      expect(started.map((options) => options.vbvBufferMs)).toEqual([500, LOWER_RUNG_VBV_MS]);
      // Rung 2 is 35 % of the bitrate: its VBV buffer holds 0.15 s of 700 kbit/s, 13 kB.
      const bound = (rungs.ladder[2]!.bitrate! * LOWER_RUNG_VBV_MS) / 1000 / 8;
      expect(keyframes.get(2)).toBeLessThanOrEqual(bound);
      console.log(`first keyframes: rung 0 ${keyframes.get(0)} bytes, rung 2 ${keyframes.get(2)} bytes (its VBV buffer ${Math.round(bound)} bytes)`);
    } finally {
      await rungs.close();
    }
  });
});
