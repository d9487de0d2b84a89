import { OpenCVCodec } from '@camstream/opencv';
import { FakeCamera } from '@camstream/testkit';
import { FanOut, type Delivery, type Outlet } from './fan-out';
import { LatestWinsWriter } from './latest-wins-writer';
import { rungLadder, RungEncoder, type EncodedRung } from './rungs';

interface Frame {
  seq: number;
  rung: number;
  bytes: number;
}

/** An outlet on a fixed rung whose destination takes `capacity` frames before it needs a drain. */
class TestOutlet implements Outlet<Frame> {
  readonly written: Frame[] = [];
  readonly dropped: Frame[] = [];
  readonly writer: LatestWinsWriter<Delivery<Frame>>;

  constructor(
    public rung: number,
    capacity = Infinity,
  ) {
    this.writer = new LatestWinsWriter<Delivery<Frame>>({
      send: (d) => {
        this.written.push(d.frame);
        return this.written.length % capacity !== 0;
      },
      taken: (d) => d.settle(true),
      dropped: (d) => {
        this.dropped.push(d.frame);
        d.settle(false);
      },
    });
  }

  chooseRung(): number {
    return this.rung;
  }

  offer(delivery: Delivery<Frame>): void {
    this.writer.offer(delivery);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('FanOut', () => {
  const codec = new OpenCVCodec();
  const ladder = rungLadder('jpeg', 320, 240, 80);
  let fanOut: FanOut<Frame>;
  let camera: FakeCamera;
  let encodes: jest.SpyInstance;

  beforeEach(() => {
    camera = new FakeCamera({ width: 320, height: 240, fps: 0 });
    encodes = jest.spyOn(codec, 'encode');
    fanOut = new FanOut<Frame>({
      encoder: new RungEncoder(codec, 'jpeg', ladder),
      prepare: (e: EncodedRung, p) => ({ seq: p.seq, rung: e.rung, bytes: e.payload.length }),
      fps: 30,
    });
  });
  afterEach(() => encodes.mockRestore());

  async function publish(seq: number) {
    const { image, captureTimeMs } = (await camera.read())!;
    return fanOut.publish({ image, seq, captureTime: captureTimeMs });
  }

  it('with offerAfter, encodes at once but offers only once it settles', async () => {
    const prepared: number[] = [];
    const gated = new FanOut<Frame>({
      encoder: new RungEncoder(codec, 'jpeg', ladder),
      prepare: (e: EncodedRung, p) => {
        prepared.push(p.seq);
        return { seq: p.seq, rung: e.rung, bytes: e.payload.length };
      },
      fps: 30,
    });
    const outlet = new TestOutlet(0);
    gated.add(outlet);
    let open!: () => void;
    const offerAfter = new Promise<void>((resolve) => (open = resolve));
    const { image, captureTimeMs } = (await camera.read())!;
    let resolved = false;
    const publishing = gated.publish({ image, seq: 1, captureTime: captureTimeMs, offerAfter }).then((result) => {
      resolved = true;
      return result;
    });
    // Encoded and prepared (a frame is offered right after it is prepared, unless it waits).
    await until(() => prepared.length === 1, 'the encoded frame');
    expect(outlet.written).toEqual([]);
    expect(resolved).toBe(false);
    open();
    const published = await publishing;
    expect(outlet.written.map((f) => f.seq)).toEqual([1]);
    await expect(published.taken).resolves.toBeUndefined();
  });

  it('encodes each rung in use once per frame, whatever the number of outlets on it', async () => {
    const outlets = [new TestOutlet(0), new TestOutlet(0), new TestOutlet(0), new TestOutlet(5), new TestOutlet(5)];
    outlets.forEach((o) => fanOut.add(o));
    const published = await publish(1);
    expect(encodes).toHaveBeenCalledTimes(2);
    expect([...published.rungs.keys()].sort()).toEqual([0, 5]);
    for (const outlet of outlets) expect(outlet.written).toEqual([published.frames.get(outlet.rung)]);
    // Every outlet of a rung got the very same frame object.
    expect(outlets[0]!.written[0]).toBe(outlets[2]!.written[0]);
  });

  it('encodes nothing for rungs nobody is on, and nothing at all without outlets', async () => {
    await publish(1);
    expect(encodes).not.toHaveBeenCalled();
    fanOut.add(new TestOutlet(6));
    await publish(2);
    expect(encodes).toHaveBeenCalledTimes(1);
  });

  it('settles `taken` once the fastest outlet wrote the frame, though a slow one still holds it', async () => {
    const fast = new TestOutlet(0);
    const slow = new TestOutlet(0, 1);
    fanOut.add(slow);
    await (await publish(1)).taken; // the slow one takes its first frame, then needs a drain
    fanOut.add(fast);
    const second = await publish(2);
    await second.taken;
    expect(fast.written.map((f) => f.seq)).toEqual([2]);
    expect(slow.writer.waiting?.frame.seq).toBe(2);
  });

  it('settles `taken` when every holder dropped the frame, or left', async () => {
    const slow = new TestOutlet(0, 1);
    fanOut.add(slow);
    await (await publish(1)).taken;
    const second = await publish(2);
    let settled = false;
    void second.taken.then(() => (settled = true));
    await publish(3); // replaces frame 2 in the slow outlet's slot
    await second.taken;
    expect(settled).toBe(true);
    expect(slow.dropped.map((f) => f.seq)).toEqual([2]);
  });

  it('sends each rung as soon as it is encoded: rung 0 does not wait for a slow scaled rung', async () => {
    let releaseResize!: () => void;
    const resizeGate = new Promise<void>((resolve) => (releaseResize = resolve));
    const resize = jest.spyOn(codec, 'resize').mockImplementation(async (image, width, height) => {
      await resizeGate;
      return { width, height, channels: 3, data: Buffer.alloc(width * height * 3, image.data[0]) };
    });
    const full = new TestOutlet(0);
    const scaled = new TestOutlet(5);
    fanOut.add(full);
    fanOut.add(scaled);
    const publishing = publish(1);
    await until(() => full.written.length === 1, 'rung 0 to go out');
    expect(scaled.written).toEqual([]);
    releaseResize();
    await publishing;
    expect(scaled.written.map((f) => f.rung)).toEqual([5]);
    resize.mockRestore();
  });

  it('measures each rung it encodes and scales its estimate for the others', async () => {
    fanOut.add(new TestOutlet(0));
    const published = await publish(1);
    expect(fanOut.expectedFrameBytes(0)).toBe(published.rungs.get(0)!.payload.length);
    expect(fanOut.rungBitrate(0)).toBe(published.rungs.get(0)!.payload.length * 30);
    expect(fanOut.expectedFrameBytes(5)).toBeGreaterThan(0);
    expect(fanOut.expectedFrameBytes(5)).toBeLessThan(fanOut.expectedFrameBytes(0));
  });
});
