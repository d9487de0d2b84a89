import type { CapturedFrame, FrameSource, RawImage } from '@camstream/media';
import { FakeCamera, readFrameNumber } from '@camstream/testkit';
import { startSender, until } from './sender-harness';
import { TestReceiver } from './test-receiver';

// The capture loop against real viewers on real sockets: buffers handed back to the source, and
// a source with no pace of its own.

/**
 * A camera that reuses what it is given back, like the real test pattern and capture sources:
 * the next capture is drawn into a recycled buffer when there is one. Pixels recycled while some
 * viewer still had to write them would be overwritten under it (and fail its CRC check).
 */
class RecyclingCamera implements FrameSource {
  readonly info: FrameSource['info'];
  /** Images handed out and not yet given back. */
  readonly out = new Set<RawImage>();
  readonly free: RawImage[] = [];
  recycled = 0;
  reused = 0;
  recycledTwice = 0;

  constructor(private readonly camera: FakeCamera) {
    this.info = camera.info;
  }

  async read(): Promise<CapturedFrame | null> {
    const frame = await this.camera.read();
    if (!frame) return null;
    const reuse = this.free.pop();
    let image = frame.image;
    if (reuse) {
      frame.image.data.copy(reuse.data);
      image = reuse;
      this.reused++;
    }
    this.out.add(image);
    return { image, captureTimeMs: frame.captureTimeMs };
  }

  recycle(image: RawImage): void {
    if (!this.out.delete(image)) {
      this.recycledTwice++;
      return;
    }
    this.recycled++;
    this.free.push(image);
  }

  close(): Promise<void> {
    return this.camera.close();
  }
}

describe('the capture loop with real viewers', () => {
  it('gives a raw frame back to the source only once every viewer wrote or dropped it', async () => {
    const frames = 90;
    const source = new RecyclingCamera(new FakeCamera({ width: 320, height: 240, fps: 60, frames }));
    await using sender = await startSender(source, 'raw-bgr');
    const quick = await TestReceiver.connect({ port: sender.server.port, name: 'quick' });
    // Holds frames in flight and in its slot for a good while: 100 ms per ack.
    const slow = await TestReceiver.connect({ port: sender.server.port, name: 'slow', ackDelayMs: 100 });
    await quick.until(() => sender.server.viewerList.length === 2, 'both viewers');
    expect(await sender.pump()).toBe('source-ended');
    await slow.until(() => slow.frames.at(-1)?.header.seq === frames - 1, 'the slow viewer to get the last frame');
    // Paced at 60 fps on a shared machine, even the quick viewer may miss one now and then: each
    // miss must be declared, so that frames plus declared drops account for every frame.
    await quick.until(() => quick.frames.at(-1)?.header.seq === frames - 1, 'the quick viewer to get the last frame');
    for (const receiver of [quick, slow]) {
      expect(receiver.frames.length + receiver.frames.reduce((sum, f) => sum + f.declaredDrops, 0)).toBe(frames);
      expect(receiver.frames.every((f) => f.undeclaredGap === 0)).toBe(true);
    }
    // Buffers were reused, and nobody got a frame changed under it: every CRC matched (or the
    // session would have failed), and every image still shows its own frame number.
    expect(source.reused).toBeGreaterThan(0);
    for (const receiver of [quick, slow]) {
      expect(receiver.end).toBeUndefined();
      for (const f of receiver.frames) expect(readFrameNumber({ width: 320, height: 240, channels: 3, data: f.payload })).toBe(f.header.seq);
    }
    expect(slow.frames.length).toBeLessThan(frames); // it did hold frames back
    // Every published frame came back exactly once, none while still out.
    await quick.until(() => source.recycled === sender.published, 'every frame to be recycled');
    expect(sender.published).toBe(frames);
    expect(source.recycledTwice).toBe(0);
    await Promise.all([quick.leave(), slow.leave()]);
  });

  it('a source with no pace of its own (fps 0) stays responsive: a new viewer gets frames while another takes none', async () => {
    const camera = new FakeCamera({ width: 320, height: 240, fps: 0 });
    await using sender = await startSender(camera, 'jpeg');
    // Reads, but acknowledges nothing: once its window is full, the frame waiting for it is never taken.
    const stuck = await TestReceiver.connect({ port: sender.server.port, name: 'stuck', acks: false });
    await stuck.until(() => sender.server.viewerList.length === 1, 'the first viewer');
    void sender.pump();
    // Its window is full once a published frame stays unsent: no ack will ever make room for it.
    const first = sender.server.viewerList[0]!;
    await until(() => first.sent > 0 && sender.published === first.sent + 1, 'its window to fill');
    const newcomer = await TestReceiver.connect({ port: sender.server.port, name: 'newcomer' });
    await newcomer.until(() => newcomer.frames.length >= 30, '30 frames for the newcomer');
    const seqs = newcomer.frames.map((f) => f.header.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(newcomer.frames.every((f) => f.undeclaredGap === 0)).toBe(true);
    await newcomer.leave();
    await stuck.destroy();
  });
});
