import { CAPTION_HEIGHT, fitPicture, mosaicLayout, TILE_MARGIN } from './mosaic';
import { recordingFileFor } from '../hub/hub-camera';

describe('mosaicLayout', () => {
  it('makes a grid as square as possible, filling the canvas, each picture area above its caption', () => {
    expect(mosaicLayout(1, 1280, 720).map((t) => t.cell)).toEqual([{ x: 0, y: 0, width: 1280, height: 720 }]);
    const three = mosaicLayout(3, 1280, 720);
    expect(three.map((t) => [t.cell.x, t.cell.y])).toEqual([[0, 0], [640, 0], [0, 360]]);
    expect(three[2]!.pictureArea).toEqual({ x: TILE_MARGIN, y: 360 + TILE_MARGIN, width: 640 - 2 * TILE_MARGIN, height: 360 - CAPTION_HEIGHT - 2 * TILE_MARGIN });
    expect(mosaicLayout(5, 1280, 720).map((t) => t.cell.width)).toEqual([426, 426, 426, 426, 426]);
    expect(mosaicLayout(0, 1280, 720)).toEqual([]);
  });

  it('fits a picture as large as it goes, aspect kept, centred', () => {
    const area = { x: 4, y: 4, width: 632, height: 294 };
    expect(fitPicture(160, 120, area)).toEqual({ x: 4 + 120, y: 4, width: 392, height: 294 });
    expect(fitPicture(1920, 1080, area)).toEqual({ x: 4 + 55, y: 4, width: 522, height: 294 });
  });
});

describe('recordingFileFor', () => {
  it('names one file per camera beside the one asked for', () => {
    expect(recordingFileFor('/tmp/out.avi', 'porch')).toBe('/tmp/out-porch.avi');
    expect(recordingFileFor('rec/cams.mp4', '127.0.0.1:9001')).toBe('rec/cams-127.0.0.1-9001.mp4');
    expect(recordingFileFor('out.avi', '[::1]:9001')).toBe('out----1--9001.avi');
  });
});
