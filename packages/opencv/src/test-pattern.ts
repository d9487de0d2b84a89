import { BufferPool, type CapturedFrame, type FrameSource, type RawImage, type SourceInfo } from '@camstream/media';
import type { Mat } from '@u4/opencv4nodejs';
import { loadOpenCV } from './load-opencv';
import { FramePacer, wallClockMs } from './pacing';

export const TEST_PATTERN_DEFAULTS = { width: 1280, height: 720, fps: 30 } as const;

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface TestPatternLayout {
  /** Dark box in the top-left corner holding the two text lines below. */
  readonly textBox: Box;
  /** Where "frame N" is drawn: changes every frame. */
  readonly frameNumberBox: Box;
  /** Where the wall clock hh:mm:ss.mmm is drawn. */
  readonly clockBox: Box;
  readonly fontScale: number;
  readonly thickness: number;
}

const FONT_SIZE_AT_720P = 1.4;
/** Widest strings the text lines can hold; the box is sized for them. */
const WIDEST_FRAME_TEXT = 'frame 00000000';
const WIDEST_CLOCK_TEXT = '00:00:00.000';
/** Colour bars along the bottom edge: white, yellow, cyan, green, magenta, red, blue, black (BGR). */
const COLOUR_BARS: ReadonlyArray<readonly [number, number, number]> = [
  [235, 235, 235], [16, 235, 235], [235, 235, 16], [16, 235, 16],
  [235, 16, 235], [16, 16, 235], [235, 16, 16], [16, 16, 16],
];

/** Where the pattern draws its text at this size; tests use it to look at the right pixels. */
export function testPatternLayout(width: number, height: number): TestPatternLayout {
  const cv = loadOpenCV();
  const fontScale = Math.max(0.3, (FONT_SIZE_AT_720P * height) / 720);
  const thickness = Math.max(1, Math.round(height / 300));
  const frameText = cv.getTextSize(WIDEST_FRAME_TEXT, cv.FONT_HERSHEY_SIMPLEX, fontScale, thickness);
  const clockText = cv.getTextSize(WIDEST_CLOCK_TEXT, cv.FONT_HERSHEY_SIMPLEX, fontScale, thickness);
  const margin = Math.max(2, Math.round(height / 48));
  const lineHeight = Math.max(frameText.size.height, clockText.size.height) + frameText.baseLine + thickness;
  const lineWidth = Math.max(frameText.size.width, clockText.size.width);
  const frameNumberBox = { x: 2 * margin, y: 2 * margin, width: lineWidth, height: lineHeight };
  const clockBox = { x: 2 * margin, y: 3 * margin + lineHeight, width: lineWidth, height: lineHeight };
  const textBox = { x: margin, y: margin, width: lineWidth + 2 * margin, height: 2 * lineHeight + 3 * margin };
  return { textBox, frameNumberBox, clockBox, fontScale, thickness };
}

/** hh:mm:ss.mmm in local time, what a person compares with the clock on their wall. */
export function formatClock(wallMs: number): string {
  const time = new Date(wallMs);
  const pad = (value: number, digits = 2) => String(value).padStart(digits, '0');
  return `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}.${pad(time.getMilliseconds(), 3)}`;
}

/**
 * The built-in test pattern: a colour gradient with colour bars (built once), a bar sweeping
 * across and a bouncing ball (both a function of the frame number, so frames are reproducible),
 * and the frame number and wall clock in a box at the top left. A frame costs one copy of the
 * background into the frame's own Buffer plus a few small drawings (about 1 ms at 720p);
 * there is no getData copy because OpenCV draws straight into that Buffer.
 *
 * Its size and rate are known without OpenCV, so the background is drawn (and OpenCV loaded,
 * about half a second on a small machine) at the first read, not in the constructor: a sender
 * can listen and announce the stream while that happens.
 */
export class TestPatternSource implements FrameSource {
  readonly info: SourceInfo;
  private readonly pacer: FramePacer;
  private scene: { layout: TestPatternLayout; background: Mat; backgroundBytes: Buffer } | undefined;
  private frameNumber = 0;
  private closed = false;
  /** Frames handed back by the pump once encoded: a few are in flight at once. */
  private readonly buffers = new BufferPool(4);

  constructor(width: number = TEST_PATTERN_DEFAULTS.width, height: number = TEST_PATTERN_DEFAULTS.height, fps: number = TEST_PATTERN_DEFAULTS.fps) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 16 || height < 16) {
      throw new RangeError(`test pattern size must be whole numbers of at least 16x16, got ${width}x${height}`);
    }
    if (!Number.isFinite(fps) || fps < 0) throw new RangeError(`test pattern fps must be 0 or more, got ${fps}`);
    this.info = { description: 'test pattern', width, height, fps, live: true };
    this.pacer = new FramePacer(fps);
  }

  async read(): Promise<CapturedFrame | null> {
    if (this.closed) return null;
    await this.pacer.wait();
    if (this.closed) return null;
    const captureTimeMs = wallClockMs();
    const image = this.render(this.frameNumber++, captureTimeMs);
    return { image, captureTimeMs };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  recycle(image: RawImage): void {
    this.buffers.give(image.data);
  }

  private render(frameNumber: number, wallMs: number) {
    const cv = loadOpenCV();
    const { width, height } = this.info;
    const { layout, background } = (this.scene ??= this.drawScene());
    const data = this.buffers.take(width * height * 3);
    const frame = new cv.Mat(height, width, cv.CV_8UC3, data);
    background.copyTo(frame);

    // A bar that crosses the picture in about 4 s at the nominal rate.
    const nominalFps = this.info.fps || TEST_PATTERN_DEFAULTS.fps;
    const barWidth = Math.max(2, Math.round(width / 40));
    const step = Math.max(1, Math.round(width / (4 * nominalFps)));
    const barX = (frameNumber * step) % (width + barWidth) - barWidth;
    frame.drawRectangle(new cv.Point2(barX, 0), new cv.Point2(barX + barWidth - 1, height - 1), new cv.Vec3(255, 255, 255), -1);

    // A ball bouncing between the edges, on a different period so the two never line up for long.
    const radius = Math.max(3, Math.round(height / 12));
    const phase = frameNumber / (3 * nominalFps);
    const ballX = radius + Math.round(triangleWave(phase) * (width - 2 * radius));
    const ballY = Math.round(height / 2 + Math.sin(phase * 2 * Math.PI * 1.3) * (height / 2 - radius));
    frame.drawCircle(new cv.Point2(ballX, ballY), radius, new cv.Vec3(0, 140, 255), -1, cv.LINE_AA);

    const { textBox, frameNumberBox, clockBox, fontScale, thickness } = layout;
    frame.drawRectangle(new cv.Point2(textBox.x, textBox.y), new cv.Point2(textBox.x + textBox.width - 1, textBox.y + textBox.height - 1), new cv.Vec3(24, 24, 24), -1);
    const white = new cv.Vec3(255, 255, 255);
    const baselineOf = (box: Box) => new cv.Point2(box.x, box.y + box.height - thickness - Math.round(box.height * 0.2));
    frame.putText(`frame ${frameNumber}`, baselineOf(frameNumberBox), cv.FONT_HERSHEY_SIMPLEX, fontScale, white, thickness, cv.LINE_AA);
    frame.putText(formatClock(wallMs), baselineOf(clockBox), cv.FONT_HERSHEY_SIMPLEX, fontScale, white, thickness, cv.LINE_AA);
    return { width, height, channels: 3, data };
  }

  /**
   * What does not change from frame to frame: the text layout, and the background with a
   * caption along the bottom, above the colour bars (size and rate). The background Mat wraps
   * backgroundBytes; keeping them referenced keeps them alive.
   */
  private drawScene() {
    const cv = loadOpenCV();
    const { width, height, fps } = this.info;
    const layout = testPatternLayout(width, height);
    const backgroundBytes = renderBackground(width, height);
    const background = new cv.Mat(height, width, cv.CV_8UC3, backgroundBytes);
    const text = `camstream test pattern ${width}x${height} @ ${fps || 'max'} fps`;
    const barsTop = height - Math.round(height / 8);
    background.putText(text, new cv.Point2(Math.round(width / 40), barsTop - Math.round(height / 40)), cv.FONT_HERSHEY_SIMPLEX, layout.fontScale * 0.6, new cv.Vec3(255, 255, 255), layout.thickness, cv.LINE_AA);
    return { layout, background, backgroundBytes };
  }
}

/** 0 -> 1 -> 0 over one unit of phase. */
function triangleWave(phase: number): number {
  const t = phase - Math.floor(phase);
  return t < 0.5 ? 2 * t : 2 - 2 * t;
}

/** Gradient (blue grows to the right, green downwards, red along the other diagonal) over colour bars. */
function renderBackground(width: number, height: number): Buffer {
  const data = Buffer.allocUnsafe(width * height * 3);
  const barsTop = height - Math.round(height / 8);
  for (let y = 0; y < height; y++) {
    const green = Math.round((200 * y) / (height - 1));
    let offset = y * width * 3;
    if (y >= barsTop) {
      for (let x = 0; x < width; x++, offset += 3) {
        const bar = COLOUR_BARS[Math.min(COLOUR_BARS.length - 1, Math.floor((x * COLOUR_BARS.length) / width))]!;
        data[offset] = bar[0];
        data[offset + 1] = bar[1];
        data[offset + 2] = bar[2];
      }
      continue;
    }
    for (let x = 0; x < width; x++, offset += 3) {
      data[offset] = Math.round((200 * x) / (width - 1));
      data[offset + 1] = green;
      data[offset + 2] = 200 - Math.round((100 * (x / (width - 1) + y / (height - 1))));
    }
  }
  return data;
}
