import { AnnexBError } from './errors';
import { avccToAnnexB, FlvAvcReader } from './flv';

function tag(type: number, data: Buffer): Buffer {
  const header = Buffer.alloc(11);
  header[0] = type;
  header.writeUIntBE(data.length, 1, 3);
  const previousSize = Buffer.alloc(4);
  previousSize.writeUInt32BE(11 + data.length);
  return Buffer.concat([header, data, previousSize]);
}

/** A video tag: frame type (1 key, 2 inter) and codec 7, AVCPacketType 1, composition time 0, then AVCC NAL units. */
function avcTag(keyframe: boolean, ...nals: Buffer[]): Buffer {
  const avcc = nals.flatMap((nal) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(nal.length);
    return [length, nal];
  });
  return tag(9, Buffer.concat([Buffer.from([(keyframe ? 0x10 : 0x20) | 7, 1, 0, 0, 0]), ...avcc]));
}

const fileHeader = Buffer.from('464c5601010000000900000000', 'hex');
const aud = Buffer.from([0x09, 0xf0]);
const idr = Buffer.from([0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01]);
const slice = Buffer.from([0x41, 0x9a, 0x02]);
const stream = Buffer.concat([
  fileHeader,
  tag(18, Buffer.from('script data')),
  tag(9, Buffer.from([0x17, 0, 0, 0, 0, 1, 2, 3])), // AVC sequence header: not a picture
  avcTag(true, aud, idr),
  avcTag(false, aud, slice),
]);
const expected = [
  { annexB: Buffer.concat([Buffer.from([0, 0, 0, 1]), aud, Buffer.from([0, 0, 0, 1]), idr]), keyframe: true },
  { annexB: Buffer.concat([Buffer.from([0, 0, 0, 1]), aud, Buffer.from([0, 0, 0, 1]), slice]), keyframe: false },
];

describe('FlvAvcReader', () => {
  it('hands over each H.264 packet as Annex B, whole, however the bytes are split', () => {
    for (let split = 0; split <= stream.length; split++) {
      const reader = new FlvAvcReader(1024);
      const packets = [...reader.push(Buffer.from(stream.subarray(0, split))), ...reader.push(Buffer.from(stream.subarray(split)))];
      expect(packets).toEqual(expected);
    }
    const reader = new FlvAvcReader(1024);
    const oneByteAtATime = [...stream].flatMap((byte) => reader.push(Buffer.from([byte])));
    expect(oneByteAtATime).toEqual(expected);
  });

  it('refuses a tag over the limit from its header, and output that is not FLV', () => {
    const reader = new FlvAvcReader(8);
    expect(() => reader.push(stream)).toThrow(/FLV tag of 11 bytes, over the limit of 8/);
    expect(() => new FlvAvcReader(1024).push(Buffer.from('not flv at all'))).toThrow(AnnexBError);
  });

  it('refuses AVCC lengths that do not add up', () => {
    expect(() => avccToAnnexB(Buffer.from([0, 0, 0, 5, 0x65, 1]))).toThrow(/NAL unit of 5 bytes at byte 0/);
    expect(() => avccToAnnexB(Buffer.from([0, 0, 0, 1, 0x65, 0, 0]))).toThrow(/ends inside a NAL unit length at byte 5/);
    expect(() => avccToAnnexB(Buffer.from([0, 0, 0, 0]))).toThrow(AnnexBError);
  });
});
