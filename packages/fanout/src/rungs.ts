import type { Encoding, FrameCodec, RawImage } from '@camstream/media';
import type { ChainLink } from './chain';

/** One quality level of a stream: rung 0 is the stream itself; higher rungs are cheaper. */
export interface RungSpec {
  readonly width: number;
  readonly height: number;
  /** JPEG quality; undefined for encodings without one. */
  readonly quality?: number;
  /** H.264 bitrate in bits per second; undefined for encodings without one. */
  readonly bitrate?: number;
}

/**
 * The quality ladder for a JPEG stream of width x height at `quality`: lower quality first, then
 * three quarters, half and a quarter of the size. Consecutive rungs differ by 15-35 % in bytes
 * (measured on the test pattern at 720p: 10.5, 7.7, 6.6, 5.0, 4.1, 2.9, 2.4, 1.3 Mbit/s at 30 fps),
 * so that some rung fills most of any link between a quarter and all of the stream's bitrate.
 * Raw and PNG streams have only rung 0: they can only drop frames.
 */
export function rungLadder(encoding: Encoding, width: number, height: number, quality: number | undefined): RungSpec[] {
  const top: RungSpec = { width, height, ...(quality === undefined ? {} : { quality }) };
  if (encoding !== 'jpeg' || quality === undefined) return [top];
  const q = (fraction: number) => Math.max(10, Math.round(quality * fraction));
  const scaled = (fraction: number) => ({ width: even(width * fraction), height: even(height * fraction) });
  const steps: RungSpec[] = [
    top,
    { width, height, quality: q(0.75) },
    { width, height, quality: q(0.5) },
    { ...scaled(0.75), quality: q(0.75) },
    { ...scaled(0.75), quality: q(0.5) },
    { ...scaled(0.5), quality: q(0.75) },
    { ...scaled(0.5), quality: q(0.5) },
    { ...scaled(0.25), quality: q(0.75) },
  ];
  // Tiny streams: leave out lower rungs that would be smaller than 16 pixels a side, or repeat a rung.
  return steps.filter(
    (rung, i) => i === 0 || (rung.width >= 16 && rung.height >= 16 && steps.findIndex((r) => sameRung(r, rung)) === i),
  );
}

/**
 * The expected size of a rung's frames relative to rung 0's, before any was measured: JPEG bytes
 * grow with about the 0.68th power of the area and fall with quality as measured at 720p.
 */
export function relativeRungSize(rung: RungSpec, top: RungSpec): number {
  // Bitrate rungs (H.264) say it themselves.
  if (rung.bitrate !== undefined && top.bitrate !== undefined) return rung.bitrate / top.bitrate;
  const area = (rung.width * rung.height) / (top.width * top.height);
  const quality = top.quality === undefined || rung.quality === undefined ? 1 : qualityFactor(rung.quality) / qualityFactor(top.quality);
  return area ** 0.68 * quality;
}

/** JPEG bytes at quality q relative to quality 80 (test pattern, 720p). */
function qualityFactor(q: number): number {
  const table: Array<[number, number]> = [[10, 0.45], [20, 0.52], [30, 0.58], [40, 0.62], [50, 0.67], [60, 0.73], [70, 0.83], [80, 1], [90, 1.4], [100, 3]];
  for (let i = 1; i < table.length; i++) {
    const [q1, f1] = table[i]!;
    const [q0, f0] = table[i - 1]!;
    if (q <= q1) return f0 + ((f1 - f0) * (q - q0)) / (q1 - q0);
  }
  return table[table.length - 1]![1];
}

function even(n: number): number {
  return Math.max(2, 2 * Math.round(n / 2));
}

function sameRung(a: RungSpec, b: RungSpec): boolean {
  return a.width === b.width && a.height === b.height && a.quality === b.quality;
}

export interface EncodedRung {
  readonly rung: number;
  readonly width: number;
  readonly height: number;
  readonly payload: Buffer;
  /** Inter-coded rungs (H.264): where the frame stands in its rung's chain; absent for frames that stand alone. */
  readonly chain?: ChainLink;
}

/**
 * What the fan-out encodes with: a ladder, and each captured image encoded for the rungs asked for.
 * RungEncoder (JPEG, PNG, raw: frames that stand alone) is one; the sender's H.264 encoders another.
 */
export interface RungSource {
  readonly ladder: readonly RungSpec[];
  /** Frames depend on the frames before them on their rung (they carry a ChainLink). */
  readonly interCoded?: boolean;
  /**
   * Starts encoding `image` for every rung asked for (and may for others it keeps running), one
   * promise per rung; a promise resolves with undefined when that rung gives no frame for it.
   * `encodedTop` is rung 0 already encoded, used as is (`topChain`: where it stands in its chain).
   */
  encodeEach(image: RawImage, rungs: Iterable<number>, encodedTop?: Buffer, topChain?: ChainLink): Map<number, Promise<EncodedRung | undefined>>;
  /** True when a frame for this rung would not come back soon (its encoder is still starting): the fan-out does not wait for it. */
  isStarting?(rung: number): boolean;
}

/**
 * Encodes one captured image for the rungs asked for, each at most once, sharing the scaled image
 * between rungs of the same size. Rung 0 can be handed in already encoded (a JPEG stream forwarded
 * by a receiver to browsers), and is then never encoded again.
 */
export class RungEncoder implements RungSource {
  constructor(
    private readonly codec: FrameCodec,
    private readonly encoding: Encoding,
    readonly ladder: readonly RungSpec[],
  ) {
    if (ladder.length === 0) throw new RangeError('a ladder needs at least rung 0');
  }

  /** Encodes every rung asked for; resolves once all are done. */
  async encode(image: RawImage, rungs: Iterable<number>, encodedTop?: Buffer): Promise<Map<number, EncodedRung>> {
    const pending = this.encodeEach(image, rungs, encodedTop);
    const encoded = await Promise.all(pending.values());
    return new Map(encoded.map((e) => [e.rung, e]));
  }

  /**
   * Starts every rung asked for at once and hands back one promise per rung, so that a rung can go
   * out as soon as it is ready, without waiting for slower ones (a full-size rung is not held up
   * by a scaled one).
   */
  encodeEach(image: RawImage, rungs: Iterable<number>, encodedTop?: Buffer, topChain?: ChainLink): Map<number, Promise<EncodedRung>> {
    const wanted = [...new Set(rungs)].sort((a, b) => a - b);
    for (const rung of wanted) {
      if (this.ladder[rung] === undefined) throw new RangeError(`no rung ${rung}: the ladder has ${this.ladder.length}`);
    }
    const scaledBySize = new Map<string, Promise<RawImage>>();
    const scaled = (spec: RungSpec): Promise<RawImage> => {
      if (spec.width === image.width && spec.height === image.height) return Promise.resolve(image);
      const key = `${spec.width}x${spec.height}`;
      let pending = scaledBySize.get(key);
      if (!pending) {
        pending = this.codec.resize(image, spec.width, spec.height);
        scaledBySize.set(key, pending);
      }
      return pending;
    };
    const encodeRung = async (rung: number): Promise<EncodedRung> => {
      const spec = this.ladder[rung]!;
      if (rung === 0 && encodedTop) return { rung, width: spec.width, height: spec.height, payload: encodedTop, ...(topChain ? { chain: topChain } : {}) };
      const source = await scaled(spec);
      const payload = await this.codec.encode(source, this.encoding, spec.quality === undefined ? {} : { quality: spec.quality });
      return { rung, width: spec.width, height: spec.height, payload };
    };
    return new Map(wanted.map((rung) => [rung, encodeRung(rung)]));
  }
}
