import type { RawImage } from '@camstream/media';
import { openSource } from '@camstream/opencv';
import { imageDifference } from '@camstream/testkit';
import { H264Decoder } from '../src/h264-decoder';
import { H264Encoder } from '../src/h264-encoder';

const WIDTH = 640;
const HEIGHT = 360;
const FRAMES = 8;

it('encodes and decodes the OpenCV test pattern: each picture is its own frame, not a neighbour', async () => {
  const source = await openSource('test', { width: WIDTH, height: HEIGHT, fps: 0 });
  const originals: RawImage[] = [];
  for (let frame = 0; frame < FRAMES; frame++) {
    const image = (await source.read())!.image;
    originals.push({ ...image, data: Buffer.from(image.data) });
  }
  await source.close();
  const encoder = new H264Encoder({ width: WIDTH, height: HEIGHT, fps: 30, keyframeInterval: 4, keepSpareProcess: false });
  const decoder = new H264Decoder({ width: WIDTH, height: HEIGHT });
  try {
    for (const [frame, original] of originals.entries()) {
      const picture = await decoder.decode((await encoder.encode(original)).data);
      // The sweeping bar, the ball and the frame number move every frame: the closest original is its own.
      const differences = originals.map((candidate) => imageDifference(picture.image, candidate));
      expect(differences.indexOf(Math.min(...differences))).toBe(frame);
      expect(differences[frame]).toBeLessThan(3);
    }
  } finally {
    await encoder.close();
    await decoder.close();
  }
});
