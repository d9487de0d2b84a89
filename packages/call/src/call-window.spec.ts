import type { Display, RawImage } from '@camstream/media';
import { OpenCVCodec } from '@camstream/opencv';
import { CallWindow } from './call-window';

/** A display that keeps what it was given to show. */
class RecordingDisplay implements Display {
  readonly shown: RawImage[] = [];
  readonly closed = new Promise<void>(() => undefined);
  write(image: RawImage): void {
    this.shown.push({ ...image, data: Buffer.from(image.data) });
  }
  async close(): Promise<void> {}
}

const solid = (width: number, height: number, bgr: [number, number, number]): RawImage => {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(bgr, i * 3);
  return { width, height, channels: 3, data };
};

const pixel = (image: RawImage, x: number, y: number) => [...image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3)];

describe('CallWindow', () => {
  it("shows this side alone until the partner's video comes, then the partner's with this side in the bottom-right corner", async () => {
    let now = 0;
    const display = new RecordingDisplay();
    const window = new CallWindow(display, { codec: new OpenCVCodec(), now: () => now });
    const own = solid(320, 240, [0, 0, 255]);
    await window.previewSink.write(own);
    expect(display.shown).toHaveLength(1);
    expect(pixel(display.shown[0]!, 10, 10)).toEqual([0, 0, 255]);

    const partner = solid(640, 480, [255, 0, 0]);
    await window.partnerSink.write(partner); // no inset yet: the partner's picture alone
    await window.previewSink.write(own); // scaled to the inset, not shown by itself
    expect(display.shown).toHaveLength(2);
    await window.partnerSink.write(partner);
    const composed = display.shown.at(-1)!;
    expect(composed).toMatchObject({ width: 640, height: 480, channels: 3 });
    // A quarter of the partner's width, 8 pixels from the corner.
    expect(pixel(composed, 640 - 8 - 1, 480 - 8 - 1)).toEqual([0, 0, 255]);
    expect(pixel(composed, 640 - 8 - 160, 480 - 8 - 120)).toEqual([0, 0, 255]);
    expect(pixel(composed, 640 - 8 - 161, 480 - 8 - 1)).toEqual([255, 0, 0]);
    expect(pixel(composed, 640 - 4, 480 - 4)).toEqual([255, 0, 0]);
    expect(pixel(composed, 10, 10)).toEqual([255, 0, 0]);
    // The partner's own buffer is left as it was.
    expect(pixel(partner, 639 - 8, 479 - 8)).toEqual([255, 0, 0]);

    // A second without the partner: this side's picture alone again.
    now += 1500;
    await window.previewSink.write(own);
    expect(display.shown.at(-1)).toMatchObject({ width: 320, height: 240 });
  });
});
