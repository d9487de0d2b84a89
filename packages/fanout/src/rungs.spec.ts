import { OpenCVCodec } from '@camstream/opencv';
import { FakeCamera } from '@camstream/testkit';
import { relativeRungSize, rungLadder, RungEncoder } from './rungs';

describe('rungLadder', () => {
  it('lowers JPEG quality first, then the size, with even dimensions', () => {
    expect(rungLadder('jpeg', 1280, 720, 80)).toEqual([
      { width: 1280, height: 720, quality: 80 },
      { width: 1280, height: 720, quality: 60 },
      { width: 1280, height: 720, quality: 40 },
      { width: 960, height: 540, quality: 60 },
      { width: 960, height: 540, quality: 40 },
      { width: 640, height: 360, quality: 60 },
      { width: 640, height: 360, quality: 40 },
      { width: 320, height: 180, quality: 60 },
    ]);
  });

  it('gives raw and PNG streams rung 0 only: they can only drop frames', () => {
    expect(rungLadder('raw-bgr', 640, 480, undefined)).toEqual([{ width: 640, height: 480 }]);
    expect(rungLadder('png', 640, 480, undefined)).toEqual([{ width: 640, height: 480 }]);
  });

  it('leaves out rungs under 16 pixels a side and repeated rungs', () => {
    const tiny = rungLadder('jpeg', 40, 30, 12);
    expect(tiny.every((r) => r.width >= 16 && r.height >= 16)).toBe(true);
    expect(new Set(tiny.map((r) => `${r.width}x${r.height}q${r.quality}`)).size).toBe(tiny.length);
  });

  it('expects smaller frames on every lower rung', () => {
    const ladder = rungLadder('jpeg', 1280, 720, 80);
    const sizes = ladder.map((r) => relativeRungSize(r, ladder[0]!));
    expect(sizes[0]).toBe(1);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]!).toBeLessThan(sizes[i - 1]!);
  });
});

describe('RungEncoder', () => {
  const codec = new OpenCVCodec();

  it('encodes each rung asked for once, scaling once per size, and decodes back to that size', async () => {
    const camera = new FakeCamera({ width: 320, height: 240, fps: 0, frames: 1 });
    const { image } = (await camera.read())!;
    const ladder = rungLadder('jpeg', 320, 240, 80);
    const encoder = new RungEncoder(codec, 'jpeg', ladder);
    const encode = jest.spyOn(codec, 'encode');
    const resize = jest.spyOn(codec, 'resize');
    const out = await encoder.encode(image, [0, 3, 4, 3, 0]);
    expect([...out.keys()]).toEqual([0, 3, 4]);
    expect(encode).toHaveBeenCalledTimes(3);
    // Rungs 3 and 4 share the 240x180 image; rung 0 needs no scaling.
    expect(resize.mock.calls.filter(([, w, h]) => w !== 320 || h !== 240)).toHaveLength(1);
    for (const [rung, { payload, width, height }] of out) {
      expect({ width, height }).toEqual({ width: ladder[rung]!.width, height: ladder[rung]!.height });
      const decoded = await codec.decode(payload, 'jpeg', { width, height, channels: 3 });
      expect([decoded.width, decoded.height]).toEqual([width, height]);
    }
    expect(out.get(4)!.payload.length).toBeLessThan(out.get(3)!.payload.length);
    encode.mockRestore();
    resize.mockRestore();
  });

  it('uses an already encoded rung 0 as is', async () => {
    const camera = new FakeCamera({ width: 64, height: 48, fps: 0, frames: 1 });
    const { image } = (await camera.read())!;
    const encoder = new RungEncoder(codec, 'jpeg', rungLadder('jpeg', 64, 48, 80));
    const given = Buffer.from('the stream payload');
    const out = await encoder.encode(image, [0], given);
    expect(out.get(0)!.payload).toBe(given);
  });

  it('refuses a rung the ladder does not have', async () => {
    const encoder = new RungEncoder(codec, 'raw-bgr', [{ width: 4, height: 4 }]);
    await expect(encoder.encode({ width: 4, height: 4, channels: 3, data: Buffer.alloc(48) }, [1])).rejects.toThrow('no rung 1: the ladder has 1');
  });
});
