import { processExists, readFrameNumber, renderFakeFrame } from '@camstream/testkit';
import { NalType, readNalUnits } from '../src/annexb';
import { AnnexBError, DecodeError, FfmpegClosedError, FfmpegExitedError, FfmpegNotFoundError, NotKeyframeError, StreamMismatchError } from '../src/errors';
import { H264Decoder, PreparedH264Decoder, type DecodedFrame } from '../src/h264-decoder';
import { H264Encoder } from '../src/h264-encoder';

const WIDTH = 320;
const HEIGHT = 240;
const FRAMES = 12;
const KEYFRAME_INTERVAL = 5;
/** Access units of fake frames 0..11, keyframes at 0, 5 and 10. */
const units: Buffer[] = [];

const startCode = Buffer.from([0, 0, 0, 1]);
const withoutNalTypes = (unit: Buffer, types: number[]) =>
  Buffer.concat(readNalUnits(unit).filter((nal) => !types.includes(nal.type)).flatMap((nal) => [startCode, nal.data]));

beforeAll(async () => {
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: KEYFRAME_INTERVAL, keepSpareProcess: false });
  try {
    for (let frame = 0; frame < FRAMES; frame++) units.push((await encoder.encode(renderFakeFrame(frame, WIDTH, HEIGHT))).data);
  } finally {
    await encoder.close();
  }
});

describe('H264Decoder', () => {
  let decoder: H264Decoder | undefined;
  afterEach(async () => {
    await decoder?.close();
    decoder = undefined;
  });
  const open = (width = WIDTH, height = HEIGHT) => (decoder = new H264Decoder({ width, height, maxPendingAccessUnits: 16 }));

  it('starts at a later keyframe, like a receiver that joins late, and gives one picture per access unit', async () => {
    const decoding = open();
    const numbers: Array<number | null> = [];
    for (const unit of units.slice(KEYFRAME_INTERVAL)) {
      const picture = await decoding.decode(unit);
      expect(picture.damaged).toBe(false);
      numbers.push(readFrameNumber(picture.image));
    }
    expect(numbers).toEqual([5, 6, 7, 8, 9, 10, 11]);
  });

  it('decodes access units given all at once in order', async () => {
    const decoding = open();
    const pictures = await Promise.all(units.map((unit) => decoding.decode(unit)));
    expect(pictures.map((picture) => readFrameNumber(picture.image))).toEqual([...Array(FRAMES).keys()]);
    expect(pictures.map((picture) => picture.keyframe)).toEqual(pictures.map((_, frame) => frame % KEYFRAME_INTERVAL === 0));
  });

  it('refuses to start at a P-frame or at a keyframe without its SPS and PPS, then starts at a keyframe', async () => {
    const decoding = open();
    await expect(decoding.decode(units[1]!)).rejects.toThrow(NotKeyframeError);
    await expect(decoding.decode(units[1]!)).rejects.toThrow(/must start at a keyframe with its SPS and PPS; this access unit \(NAL types 9,1\) is not a keyframe/);
    await expect(decoding.decode(withoutNalTypes(units[5]!, [NalType.SPS, NalType.PPS]))).rejects.toThrow(/is a keyframe without SPS and PPS/);
    expect(readFrameNumber((await decoding.decode(units[5]!)).image)).toBe(5);
  });

  it('refuses an SPS that announces another picture size, before decoding', async () => {
    const decoding = open(640, 480);
    await expect(decoding.decode(units[0]!)).rejects.toThrow(StreamMismatchError);
    await expect(decoding.decode(units[0]!)).rejects.toThrow(/announces 320x240, the stream is 640x480/);
  });

  it('writes the picture into the caller\'s buffer', async () => {
    const decoding = open();
    const buffer = Buffer.alloc(WIDTH * HEIGHT * 3);
    const first = await decoding.decode(units[0]!, buffer);
    expect(first.image.data).toBe(buffer);
    expect(readFrameNumber({ width: WIDTH, height: HEIGHT, channels: 3, data: buffer })).toBe(0);
    const other = Buffer.alloc(WIDTH * HEIGHT * 3);
    const second = await decoding.decode(units[1]!, () => other);
    expect(second.image.data).toBe(other);
    await expect(decoding.decode(units[2]!, Buffer.alloc(10))).rejects.toThrow(/into must have 230400 bytes/);
  });

  it('reports an access unit that gives no picture and decodes the ones after it', async () => {
    const decoding = open();
    // A slice that refers to a PPS that does not exist: first_mb 0, type P, pic_parameter_set_id 5.
    const orphanSlice = Buffer.concat([startCode, Buffer.from([0x09, 0xf0]), startCode, Buffer.from([0x41, 0b11001100, 0x80])]);
    const results = await Promise.allSettled([units[0]!, orphanSlice, units[1]!, units[2]!].map((unit) => decoding.decode(unit)));
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const failure = (results[1] as PromiseRejectedResult).reason as DecodeError;
    expect(failure).toBeInstanceOf(DecodeError);
    expect(failure.message).toMatch(/access unit 1 gave no picture: .*PPS 5/);
    const numbers = results.flatMap((result) => (result.status === 'fulfilled' ? [readFrameNumber(result.value.image)] : []));
    expect(numbers).toEqual([0, 1, 2]);
  });

  it('flags pictures damaged by corrupt slice data and recovers at the next keyframe', async () => {
    const decoding = open();
    const corrupt = Buffer.from(units[2]!);
    for (let at = 24; at < corrupt.length; at += 5) corrupt[at] = corrupt[at]! ^ 0x5a;
    const results = await Promise.allSettled([units[0]!, units[1]!, corrupt, units[3]!, units[4]!, units[5]!].map((unit) => decoding.decode(unit)));
    const corruptResult = results[2]!;
    // Concealed (a damaged picture, with the decoder's words) or no picture at all: reported either way.
    if (corruptResult.status === 'fulfilled') {
      expect(corruptResult.value.damaged).toBe(true);
      expect(corruptResult.value.decoderMessages.length).toBeGreaterThan(0);
    } else {
      expect(corruptResult.reason).toBeInstanceOf(DecodeError);
    }
    const keyframe = results[5]!;
    expect(keyframe.status).toBe('fulfilled');
    const picture = (keyframe as PromiseFulfilledResult<DecodedFrame>).value;
    expect(picture.damaged).toBe(false);
    expect(readFrameNumber(picture.image)).toBe(5);
  });

  it('refuses malformed Annex B without passing it on, and goes on', async () => {
    const decoding = open();
    await decoding.decode(units[0]!);
    await expect(decoding.decode(Buffer.from([0, 0, 1, 0x41, 0, 0, 2, 1]))).rejects.toThrow(AnnexBError);
    await expect(decoding.decode(Buffer.from('no start code'))).rejects.toThrow(AnnexBError);
    expect(readFrameNumber((await decoding.decode(units[1]!)).image)).toBe(1);
  });

  it('fails clearly when ffmpeg dies, and leaves no process behind', async () => {
    const decoding = open();
    await decoding.decode(units[0]!);
    const pending = decoding.decode(units[1]!);
    decoding.kill();
    await expect(Promise.all([pending, decoding.decode(units[2]!)])).rejects.toThrow(FfmpegExitedError);
    await expect(decoding.decode(units[2]!)).rejects.toThrow(/the H.264 decoder stopped: ffmpeg \(pid \d+\) was killed by SIGKILL/);
    expect(processExists(decoding.pid)).toBe(false);
  });

  it('close() decodes what it has, then ends ffmpeg', async () => {
    const decoding = open();
    const last = decoding.decode(units[0]!);
    await decoding.close();
    expect(readFrameNumber((await last).image)).toBe(0);
    expect(processExists(decoding.pid)).toBe(false);
    await expect(decoding.decode(units[1]!)).rejects.toThrow(FfmpegClosedError);
  });
});

describe('PreparedH264Decoder', () => {
  const decoders: H264Decoder[] = [];
  const prepared: PreparedH264Decoder[] = [];
  afterEach(async () => {
    await Promise.all([...decoders.splice(0).map((decoder) => decoder.close()), ...prepared.splice(0).map((waiting) => waiting.close())]);
  });
  const prepare = (ffmpegPath?: string) => {
    const waiting = new PreparedH264Decoder(ffmpegPath);
    prepared.push(waiting);
    return waiting;
  };

  it('gives its waiting ffmpeg to the first decoder, which decodes in it; the next decoder starts its own', async () => {
    const waiting = prepare();
    const pid = waiting.pid;
    expect(pid).toEqual(expect.any(Number));
    const first = new H264Decoder({ width: WIDTH, height: HEIGHT, prepared: waiting });
    decoders.push(first);
    expect(first.pid).toBe(pid);
    expect(waiting.ready).toBe(false);
    expect(readFrameNumber((await first.decode(units[0]!)).image)).toBe(0);
    expect(readFrameNumber((await first.decode(units[1]!)).image)).toBe(1);
    const second = new H264Decoder({ width: WIDTH, height: HEIGHT, prepared: waiting });
    decoders.push(second);
    expect(second.pid).not.toBe(pid);
    expect(readFrameNumber((await second.decode(units[5]!)).image)).toBe(5);
  });

  it('close() ends a process nobody took, and leaves none behind', async () => {
    const waiting = prepare();
    const pid = waiting.pid!;
    expect(processExists(pid)).toBe(true);
    await waiting.close();
    expect(waiting.ready).toBe(false);
    expect(processExists(pid)).toBe(false);
    const decoder = new H264Decoder({ width: WIDTH, height: HEIGHT, prepared: waiting });
    decoders.push(decoder);
    expect(decoder.pid).not.toBe(pid);
  });

  it('is no error when ffmpeg cannot start; the decoder that needs it says why', () => {
    const waiting = prepare('/nonexistent/ffmpeg');
    expect(waiting.ready).toBe(false);
    expect(() => new H264Decoder({ width: WIDTH, height: HEIGHT, prepared: waiting, ffmpegPath: '/nonexistent/ffmpeg' })).toThrow(FfmpegNotFoundError);
  });
});
