import type { Display, FrameCodec, FrameMeta, FrameSink, RawImage } from '@camstream/media';
import type { CanvasRect, TileDrawing } from '@camstream/opencv';

/** The caption strip under each picture: three lines (name; figures; frame and state). */
export const CAPTION_HEIGHT = 58;
/** Space round each picture inside its cell. */
export const TILE_MARGIN = 4;
/** The window's size unless told otherwise: it fits a 1280x800 screen, and a 2x2 grid of 16:9 pictures. */
export const DEFAULT_MOSAIC_SIZE = { width: 1280, height: 720 };
export const MOSAIC_TITLE = 'camstream mosaic';

export interface TileLayout {
  cell: CanvasRect;
  /** Where a picture may go: the cell less its margin and caption strip. */
  pictureArea: CanvasRect;
}

/** `count` cells in a grid as square as possible (columns first), filling a width x height canvas. */
export function mosaicLayout(count: number, width: number, height: number): TileLayout[] {
  if (count <= 0) return [];
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const cellWidth = Math.floor(width / columns);
  const cellHeight = Math.floor(height / rows);
  return Array.from({ length: count }, (_, i) => {
    const cell = { x: (i % columns) * cellWidth, y: Math.floor(i / columns) * cellHeight, width: cellWidth, height: cellHeight };
    const pictureArea = {
      x: cell.x + TILE_MARGIN,
      y: cell.y + TILE_MARGIN,
      width: Math.max(1, cellWidth - 2 * TILE_MARGIN),
      height: Math.max(1, cellHeight - CAPTION_HEIGHT - 2 * TILE_MARGIN),
    };
    return { cell, pictureArea };
  });
}

/** Where a width x height picture goes in `area`: as large as fits, aspect kept, centred. */
export function fitPicture(width: number, height: number, area: CanvasRect): CanvasRect {
  const scale = Math.min(area.width / width, area.height / height);
  const fitted = { width: Math.max(1, Math.floor(width * scale)), height: Math.max(1, Math.floor(height * scale)) };
  return { x: area.x + Math.floor((area.width - fitted.width) / 2), y: area.y + Math.floor((area.height - fitted.height) / 2), ...fitted };
}

export interface MosaicOptions {
  /** Scales each camera's picture to its tile (on the thread pool). */
  codec: FrameCodec;
  /** Opens the window (the caller checked that there is a display). */
  openWindow: (title: string) => Promise<Display>;
  /** Draws the tiles into the canvas (drawMosaic of @camstream/opencv). */
  draw: (canvas: RawImage, tiles: readonly TileDrawing[]) => Promise<void>;
  width?: number;
  height?: number;
  /** At most this many mosaics a second (default 30). */
  maxFps?: number;
  log: (line: string) => void;
  /** The person closed the window (q, Esc, the close button): the run must stop. */
  stop: () => void;
}

/** What a tile says under its picture. */
export interface TileCaption {
  /** First line: the camera's name and where it comes from. */
  title: string;
  /** Second line: its figures. */
  figures: string;
  /** A banner over its picture: 'STOPPED'; or the text instead of a picture: 'NO SIGNAL'. */
  alert: string | undefined;
}

/**
 * One camera's place in the mosaic, a lasting sink of its pipeline. Each image is scaled to the
 * tile on the thread pool, into the tile's own buffer (the pipeline's may be reused at once); while
 * one is being scaled, newer ones are skipped (latest-wins): the tile always shows a recent picture.
 */
export class MosaicTile implements FrameSink {
  readonly keepsImages = false;
  /** The scaled picture shown now. */
  picture: RawImage | undefined;
  /** The frame it shows. */
  seq: number | undefined;
  caption: TileCaption;
  /** Images not scaled because the previous one still was. */
  skipped = 0;
  private scaling = false;
  /** Buffers of the current picture size, reused: one shown, one being filled, one a mosaic may still read. */
  private spare: Buffer[] = [];

  constructor(
    readonly camera: string,
    private readonly mosaic: Mosaic,
  ) {
    this.caption = { title: camera, figures: '', alert: 'NO SIGNAL' };
  }

  async write(image: RawImage, meta?: FrameMeta): Promise<void> {
    if (this.scaling) {
      this.skipped++;
      return;
    }
    this.scaling = true;
    try {
      const scaled = await this.scale(image, this.mosaic.pictureSize(this, image.width, image.height));
      this.show(scaled);
      this.seq = meta?.seq;
    } finally {
      this.scaling = false;
    }
  }

  async close(): Promise<void> {
    // The tile stays in the mosaic with its last picture (a camera that stops is shown STOPPED).
  }

  /** The current picture scaled to a new size (the layout changed). */
  async rescale(size: { width: number; height: number }): Promise<void> {
    if (!this.picture || this.scaling) return;
    this.scaling = true;
    try {
      this.show(await this.scale(this.picture, size));
    } finally {
      this.scaling = false;
    }
  }

  /** A buffer not shown and not read by a mosaic being drawn, for the next picture. */
  private bufferFor(bytes: number): Buffer {
    this.spare = this.spare.filter((buffer) => buffer.length === bytes);
    const free = this.spare.find((buffer) => buffer !== this.picture?.data && !this.mosaic.isReading(buffer));
    if (free) return free;
    const fresh = Buffer.allocUnsafe(bytes);
    if (this.spare.length < 3) this.spare.push(fresh);
    return fresh;
  }

  private async scale(image: RawImage, size: { width: number; height: number }): Promise<RawImage> {
    const into = this.bufferFor(size.width * size.height * image.channels);
    const scaled = await this.mosaic.codec.resize(image, size.width, size.height, into);
    if (scaled.data === into) return scaled;
    // Already the tile's size: resize handed the image itself back, which is not ours to keep.
    image.data.copy(into);
    return { width: size.width, height: size.height, channels: image.channels, data: into };
  }

  private show(scaled: RawImage): void {
    this.picture = scaled;
    this.mosaic.changed();
  }
}

/**
 * Several cameras in one OpenCV window: a grid of tiles (mosaicLayout), each its camera's latest
 * picture scaled to fit, with its name and figures under it and a STOPPED banner when it stopped.
 * The grid is drawn on the thread pool (drawMosaic), latest-wins and at most maxFps a second,
 * only when something changed; a mosaic is drawn only once the window has taken the one before.
 * q, Esc or closing the window stops the run.
 */
export class Mosaic {
  readonly codec: FrameCodec;
  private readonly tiles: MosaicTile[] = [];
  private layout: TileLayout[] = [];
  /**
   * Two canvases, drawn in turn: the window takes an image by identity (it skips the one it shows
   * already), and reads the one it was given until the next replaces it.
   */
  private readonly canvases: [RawImage, RawImage];
  private readonly minIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private drawing = false;
  private dirty = false;
  private lastDrawAt = -Infinity;
  /** Settles once the window has taken the last canvas (it reads it until then). */
  private windowTook: Promise<void> = Promise.resolve();
  /** Picture buffers the mosaic being drawn reads. */
  private reading = new Set<Buffer>();
  private closed = false;
  /** Mosaics drawn so far. */
  drawn = 0;

  private constructor(
    private readonly window: Display,
    private readonly options: MosaicOptions,
  ) {
    this.codec = options.codec;
    const width = options.width ?? DEFAULT_MOSAIC_SIZE.width;
    const height = options.height ?? DEFAULT_MOSAIC_SIZE.height;
    const canvas = () => ({ width, height, channels: 3, data: Buffer.alloc(width * height * 3) });
    this.canvases = [canvas(), canvas()];
    this.minIntervalMs = 1000 / (options.maxFps ?? 30);
    void window.closed.then(() => {
      if (this.closed) return;
      options.log('mosaic window closed: stopping');
      options.stop();
    });
  }

  static async open(options: MosaicOptions): Promise<Mosaic> {
    return new Mosaic(await options.openWindow(MOSAIC_TITLE), options);
  }

  /** The camera's tile, added to the grid the first time it is asked for. */
  tile(camera: string): MosaicTile {
    const known = this.tiles.find((tile) => tile.camera === camera);
    if (known) return known;
    const tile = new MosaicTile(camera, this);
    this.tiles.push(tile);
    this.layout = mosaicLayout(this.tiles.length, this.canvases[0].width, this.canvases[0].height);
    // The other tiles got smaller (or moved): their pictures follow.
    for (const other of this.tiles) {
      if (other.picture) void other.rescale(this.pictureSize(other, other.picture.width, other.picture.height)).then(() => this.changed());
    }
    this.changed();
    return tile;
  }

  /** Updates what a tile says (once a second, and when its camera stops or comes back). */
  setCaption(camera: string, caption: TileCaption): void {
    const tile = this.tile(camera);
    const before = tile.caption;
    tile.caption = caption;
    if (before.title !== caption.title || before.figures !== caption.figures || before.alert !== caption.alert) this.changed();
  }

  /** The size a width x height picture takes in the tile's place now. */
  pictureSize(tile: MosaicTile, width: number, height: number): { width: number; height: number } {
    const place = this.layout[this.tiles.indexOf(tile)];
    if (!place) return { width, height };
    const fitted = fitPicture(width, height, place.pictureArea);
    return { width: fitted.width, height: fitted.height };
  }

  isReading(buffer: Buffer): boolean {
    return this.reading.has(buffer);
  }

  /** Something to show changed: draw a new mosaic soon (at most maxFps a second). */
  changed(): void {
    this.dirty = true;
    if (this.timer || this.drawing || this.closed) return;
    const wait = Math.max(0, this.lastDrawAt + this.minIntervalMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.draw();
    }, wait);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.window.close();
  }

  private async draw(): Promise<void> {
    if (this.drawing || this.closed) return;
    this.drawing = true;
    this.dirty = false;
    this.lastDrawAt = performance.now();
    try {
      await this.windowTook;
      const drawings: TileDrawing[] = this.tiles.map((tile, i) => {
        const { cell, pictureArea } = this.layout[i]!;
        const picture = tile.picture;
        const place = picture ? fitPicture(picture.width, picture.height, pictureArea) : undefined;
        // A picture of another size than its place (the layout just changed) waits for its rescale.
        const fits = picture && place && place.width === picture.width && place.height === picture.height;
        if (fits) this.reading.add(picture.data);
        return {
          cell,
          pictureArea,
          ...(fits ? { picture: { image: picture, x: place.x, y: place.y } } : {}),
          caption: [tile.caption.title, tile.caption.figures, tile.seq === undefined ? 'no frame yet' : `frame ${tile.seq}`],
          captionHeight: CAPTION_HEIGHT,
          ...(tile.caption.alert ? { alert: tile.caption.alert } : {}),
        };
      });
      const canvas = this.canvases[this.drawn % 2]!;
      await this.options.draw(canvas, drawings);
      this.reading.clear();
      if (this.closed) return;
      this.windowTook = Promise.resolve(this.window.write(canvas, { seq: this.drawn, captureTime: Date.now() }));
      this.drawn++;
    } catch (error) {
      this.reading.clear();
      this.options.log(`mosaic: could not draw: ${(error as Error).message}`);
    } finally {
      this.drawing = false;
    }
    if (this.dirty) this.changed();
  }
}
