import type { RawImage } from '@camstream/media';
import { checkRawImage, keepAlive, wrapImage } from './images';
import { loadOpenCV } from './load-opencv';

/** A rectangle of the canvas, in pixels. */
export interface CanvasRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One tile of a mosaic: a picture already scaled to fit, a caption, maybe an alert. */
export interface TileDrawing {
  /** The tile's cell in the canvas: everything of the tile is drawn inside it. */
  cell: CanvasRect;
  /** The picture and where its top left goes (it must lie inside the cell). */
  picture?: { image: RawImage; x: number; y: number };
  /** Where the picture goes (the alert and "no picture" are drawn there). */
  pictureArea: CanvasRect;
  /** Lines of text in the caption strip at the bottom of the cell. */
  caption: readonly string[];
  /** Height of the caption strip. */
  captionHeight: number;
  /** A banner across the lower part of the picture area, e.g. "STOPPED", with a red border round the cell. */
  alert?: string;
}

const BACKGROUND = [24, 24, 24] as const;
const CAPTION_BACKGROUND = [40, 34, 30] as const;
const CAPTION_TEXT = [235, 235, 235] as const;
const ALERT_RED = [0, 0, 200] as const;
const WHITE = [255, 255, 255] as const;
const GREY = [150, 150, 150] as const;
const CAPTION_FONT_SCALE = 0.45;
const LINE_HEIGHT = 17;

/**
 * Draws a mosaic into `canvas` (BGR): clears it, copies each tile's picture into its place and
 * writes its caption and alert. The copies and the text run on OpenCV's worker threads; the canvas
 * is written in place (its buffer is the caller's, reused from one mosaic to the next).
 */
export async function drawMosaic(canvas: RawImage, tiles: readonly TileDrawing[]): Promise<void> {
  checkRawImage(canvas, 'mosaic canvas');
  if (canvas.channels !== 3) throw new RangeError(`a mosaic canvas is BGR (3 channels), got ${canvas.channels}`);
  const cv = loadOpenCV();
  const colour = (bgr: readonly [number, number, number]) => new cv.Vec3(bgr[0], bgr[1], bgr[2]);
  const point = (x: number, y: number) => new cv.Point2(Math.round(x), Math.round(y));
  const canvasMat = wrapImage(canvas);
  canvas.data.fill(BACKGROUND[0]);
  const work: Array<Promise<unknown>> = [];
  for (const tile of tiles) {
    const { cell, picture, pictureArea, captionHeight } = tile;
    if (picture) {
      const { image, x, y } = picture;
      checkRawImage(image, 'mosaic picture');
      if (x < cell.x || y < cell.y || x + image.width > cell.x + cell.width || y + image.height > cell.y + cell.height) {
        throw new RangeError(`a ${image.width}x${image.height} picture at ${x},${y} does not fit its cell ${cell.width}x${cell.height} at ${cell.x},${cell.y}`);
      }
      work.push(wrapImage(image).copyToAsync(canvasMat.getRegion(new cv.Rect(x, y, image.width, image.height))));
    }
    const stripTop = cell.y + cell.height - captionHeight;
    canvasMat.drawRectangle(point(cell.x, stripTop), point(cell.x + cell.width - 1, cell.y + cell.height - 1), colour(CAPTION_BACKGROUND), -1);
    tile.caption.forEach((line, i) => {
      const baseline = stripTop + 14 + i * LINE_HEIGHT;
      if (baseline > cell.y + cell.height - 2) return;
      work.push(canvasMat.putTextAsync(line, point(cell.x + 6, baseline), cv.FONT_HERSHEY_SIMPLEX, CAPTION_FONT_SCALE, colour(i === 0 ? WHITE : CAPTION_TEXT), 1, cv.LINE_AA));
    });
    if (!picture) {
      const text = tile.alert ?? 'NO SIGNAL';
      work.push(canvasMat.putTextAsync(text, point(pictureArea.x + pictureArea.width / 2 - text.length * 9, pictureArea.y + pictureArea.height / 2), cv.FONT_HERSHEY_SIMPLEX, 0.9, colour(GREY), 2, cv.LINE_AA));
    }
  }
  // Pictures first: the alerts go over them.
  await Promise.all(work);
  for (const tile of tiles) {
    if (!tile.alert || !tile.picture) continue;
    const { cell, pictureArea } = tile;
    // Across the lower part of the picture: the top of a picture (where a camera's own overlay or a test's frame number is) stays visible.
    const bannerHeight = Math.max(24, Math.min(56, Math.round(pictureArea.height / 5)));
    const bannerTop = pictureArea.y + Math.round(pictureArea.height * 0.7) - Math.round(bannerHeight / 2);
    canvasMat.drawRectangle(point(pictureArea.x, bannerTop), point(pictureArea.x + pictureArea.width - 1, bannerTop + bannerHeight - 1), colour(ALERT_RED), -1);
    const scale = bannerHeight / 40;
    const textWidth = tile.alert.length * 20 * scale;
    canvasMat.putText(tile.alert, point(pictureArea.x + (pictureArea.width - textWidth) / 2, bannerTop + bannerHeight * 0.72), cv.FONT_HERSHEY_SIMPLEX, scale, colour(WHITE), 2, cv.LINE_AA);
    canvasMat.drawRectangle(point(cell.x, cell.y), point(cell.x + cell.width - 1, cell.y + cell.height - 1), colour(ALERT_RED), 3);
  }
  keepAlive(canvas);
  for (const tile of tiles) if (tile.picture) keepAlive(tile.picture.image);
}
