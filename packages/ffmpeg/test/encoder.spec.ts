import { processExists, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { inspectAccessUnit, NalType } from '../src/annexb';
import { FfmpegBusyError, FfmpegClosedError, FfmpegExitedError, FfmpegNotFoundError, FrameShapeError } from '../src/errors';
import { H264Decoder } from '../src/h264-decoder';
import { encoderArgs, H264Encoder, type EncodedAccessUnit } from '../src/h264-encoder';

const WIDTH = 320;
const HEIGHT = 240;

describe('H264Encoder', () => {
  let encoder: H264Encoder | undefined;
  let decoder: H264Decoder | undefined;
  afterEach(async () => {
    await encoder?.close();
    await decoder?.close();
    encoder = decoder = undefined;
  });

  it('gives one access unit per frame, each at once, with keyframes every keyframeInterval frames', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: 5 });
    decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
    const units: EncodedAccessUnit[] = [];
    for (let frame = 0; frame < 12; frame++) {
      // One frame at a time: its access unit must come without the next frame going in.
      const unit = await encoder.encode(renderFakeFrame(frame, WIDTH, HEIGHT));
      expect(encoder.pending).toBe(0);
      units.push(unit);
      const picture = await decoder.decode(unit.data);
      expect(readFrameNumber(picture.image)).toBe(frame);
    }
    expect(units.map((unit) => unit.frameNumber)).toEqual([...Array(12).keys()]);
    expect(units.map((unit) => unit.keyframe)).toEqual(units.map((_, frame) => frame % 5 === 0));
    for (const unit of units) {
      const info = inspectAccessUnit(unit.data);
      expect(info.nalTypes[0]).toBe(NalType.AUD);
      expect(info.keyframe).toBe(unit.keyframe);
      // SPS and PPS before every keyframe, so that a receiver can start at any of them.
      if (unit.keyframe) expect(info.sps).toMatchObject({ width: WIDTH, height: HEIGHT, chromaFormatIdc: 1 });
      expect(info.hasPps).toBe(unit.keyframe);
    }
  });

  it('keeps frames in order when many are in flight, also through the start-up', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: 100, maxPendingFrames: 16 });
    decoder = new H264Decoder({ width: WIDTH, height: HEIGHT, maxPendingAccessUnits: 16 });
    const units = await Promise.all([...Array(16).keys()].map((frame) => encoder!.encode(renderFakeFrame(frame, WIDTH, HEIGHT))));
    const pictures = await Promise.all(units.map((unit) => decoder!.decode(unit.data)));
    expect(pictures.map((picture) => readFrameNumber(picture.image))).toEqual([...Array(16).keys()]);
    expect(units.filter((unit) => unit.keyframe)).toHaveLength(1);
  });

  it('makes the next frame a keyframe on request, through a fresh process, and the stream goes on', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: 100 });
    decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
    const keyframes: boolean[] = [];
    const pids = new Set<number>();
    for (let frame = 0; frame < 8; frame++) {
      encoder.processIds.forEach((pid) => pids.add(pid));
      if (frame === 3 || frame === 6) encoder.requestKeyframe();
      const unit = await encoder.encode(renderFakeFrame(frame, WIDTH, HEIGHT));
      keyframes.push(unit.keyframe);
      expect(readFrameNumber((await decoder.decode(unit.data)).image)).toBe(frame);
    }
    expect(keyframes).toEqual([true, false, false, true, false, false, true, false]);
    // The first process and its spare, then a new spare at each of the two switches.
    expect(encoder.processCount).toBe(4);
    encoder.processIds.forEach((pid) => pids.add(pid));
    expect(pids.size).toBe(4);
    // close() also waits for the processes that were replaced.
    await encoder.close();
    expect([...pids].filter(processExists)).toEqual([]);
  });

  it('refuses an image of another size or channel count, and goes on', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30 });
    const wrong = renderFakeFrame(0, WIDTH + 2, HEIGHT);
    await expect(encoder.encode(wrong)).rejects.toThrow(FrameShapeError);
    await expect(encoder.encode({ ...renderFakeFrame(0, WIDTH, HEIGHT), channels: 4 })).rejects.toThrow(/takes 320x240 BGR images \(230400 bytes\), got 320x240x4/);
    expect((await encoder.encode(renderFakeFrame(1, WIDTH, HEIGHT))).keyframe).toBe(true);
  });

  it('refuses frames beyond maxPendingFrames instead of queueing them', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, maxPendingFrames: 2 });
    const frames = [0, 1, 2].map((frame) => encoder!.encode(renderFakeFrame(frame, WIDTH, HEIGHT)));
    await expect(frames[2]).rejects.toThrow(FfmpegBusyError);
    await expect(Promise.all(frames.slice(0, 2))).resolves.toHaveLength(2);
  });

  it('says so at once when ffmpeg is missing', () => {
    expect(() => new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, ffmpegPath: '/nonexistent/ffmpeg' })).toThrow(FfmpegNotFoundError);
    expect(() => new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, ffmpegPath: '/nonexistent/ffmpeg' })).toThrow(/cannot run \/nonexistent\/ffmpeg/);
  });

  it('refuses options x264 cannot take before starting anything', () => {
    expect(() => encoderArgs({ width: 321, height: 240, fps: 30 })).toThrow(/even width and height/);
    expect(() => encoderArgs({ width: WIDTH, height: HEIGHT, fps: 30, crf: 52 })).toThrow(/crf must be from 0 to 51/);
    expect(() => encoderArgs({ width: WIDTH, height: HEIGHT, fps: 0 })).toThrow(/fps must be more than 0/);
    expect(encoderArgs({ width: WIDTH, height: HEIGHT, fps: 30, bitrateKbps: 2000, vbvBufferMs: 250 }).join(' ')).toMatch(/bitrate=2000:vbv-maxrate=2000:vbv-bufsize=500/);
  });

  it('rejects with what ffmpeg said when its encoder cannot start', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, x264Preset: 'no-such-preset' as never, keepSpareProcess: false });
    const failure = encoder.encode(renderFakeFrame(0, WIDTH, HEIGHT));
    await expect(failure).rejects.toThrow(FfmpegExitedError);
    await expect(failure).rejects.toThrow(/exited with code 1: .*preset/i);
    await expect(encoder.encode(renderFakeFrame(1, WIDTH, HEIGHT))).rejects.toThrow(FfmpegExitedError);
  });

  it('fails clearly when ffmpeg dies, and leaves no process behind', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30 });
    await encoder.encode(renderFakeFrame(0, WIDTH, HEIGHT));
    const [current, spare] = encoder.processIds;
    process.kill(current!, 'SIGKILL');
    await expect(encoder.encode(renderFakeFrame(1, WIDTH, HEIGHT))).rejects.toThrow(/the H.264 encoder stopped: ffmpeg \(pid \d+\) was killed by SIGKILL/);
    await expect(encoder.encode(renderFakeFrame(2, WIDTH, HEIGHT))).rejects.toThrow(FfmpegExitedError);
    expect(processExists(current!)).toBe(false);
    await encoder.close();
    expect(processExists(spare!)).toBe(false);
  });

  it('close() encodes what it has, then ends both processes', async () => {
    encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30 });
    const last = encoder.encode(renderFakeFrame(0, WIDTH, HEIGHT));
    const pids = encoder.processIds;
    expect(pids).toHaveLength(2);
    await encoder.close();
    await expect(last).resolves.toMatchObject({ keyframe: true });
    expect(pids.filter(processExists)).toEqual([]);
    await expect(encoder.encode(renderFakeFrame(1, WIDTH, HEIGHT))).rejects.toThrow(FfmpegClosedError);
  });
});
