// Golden vectors: complete messages as hex, laid out as
//   8-byte message length N | 4-byte header length H | H bytes of JSON header | payload.
// They are written out literally (not produced by the encoder) so that a change to the encoder
// or decoder that alters the bytes on the wire fails the tests. CRCs were checked with Python's
// zlib.crc32.
import type { Header } from '../schema';

export interface GoldenVector {
  name: string;
  hex: string;
  header: Header;
  payloadHex: string;
}

export const helloFromSender: GoldenVector = {
  name: 'hello from sender',
  hex: `
    00000000000000cf
    000000cb
    7b2274797065223a2268656c6c6f222c2270726f746f636f6c223a2263616d73
    747265616d222c2276657273696f6e223a322c22726f6c65223a2273656e6465
    72222c226e616d65223a226c61622d63616d222c2273747265616d223a7b2277
    69647468223a3634302c22686569676874223a3438302c22667073223a33302c
    22706978656c466f726d6174223a226267723234222c22656e636f64696e6722
    3a226a706567222c227175616c697479223a38302c22736f75726365223a2273
    796e746865746963227d7d
  `,
  header: {
    type: 'hello',
    protocol: 'camstream',
    version: 2,
    role: 'sender',
    name: 'lab-cam',
    stream: { width: 640, height: 480, fps: 30, pixelFormat: 'bgr24', encoding: 'jpeg', quality: 80, source: 'synthetic' },
  },
  payloadHex: '',
};

export const helloFromReceiver: GoldenVector = {
  name: 'hello from receiver',
  hex: `
    000000000000005b
    00000057
    7b2274797065223a2268656c6c6f222c2270726f746f636f6c223a2263616d73
    747265616d222c2276657273696f6e223a322c22726f6c65223a227265636569
    766572222c226e616d65223a227669657765722d31227d
  `,
  header: { type: 'hello', protocol: 'camstream', version: 2, role: 'receiver', name: 'viewer-1' },
  payloadHex: '',
};

/** An 8-byte "JPEG" (SOI, a DQT marker start, EOI): enough to carry bytes and a CRC. */
export const jpegFrame: GoldenVector = {
  name: 'small jpeg frame',
  hex: `
    00000000000000a5
    00000099
    7b2274797065223a226672616d65222c22736571223a372c2263617074757265
    54696d65223a313730303030303030303132332c227769647468223a322c2268
    6569676874223a312c226368616e6e656c73223a332c22656e636f64696e6722
    3a226a706567222c227061796c6f61644c656e677468223a382c226372633332
    223a333734363831333336322c2264726f70706564223a327d
    ffd8ffdb0043ffd9
  `,
  header: {
    type: 'frame',
    seq: 7,
    captureTime: 1700000000123,
    width: 2,
    height: 1,
    channels: 3,
    encoding: 'jpeg',
    payloadLength: 8,
    crc32: 0xdf53d5b2,
    dropped: 2,
  },
  payloadHex: 'ffd8ffdb0043ffd9',
};

/** A 2x1 raw BGR frame: one red pixel, one green pixel. Also the worked example in PROTOCOL.md. */
export const rawFrame: GoldenVector = {
  name: 'raw-bgr 2x1 frame',
  hex: `
    00000000000000a6
    0000009c
    7b2274797065223a226672616d65222c22736571223a302c2263617074757265
    54696d65223a313730303030303030303030302c227769647468223a322c2268
    6569676874223a312c226368616e6e656c73223a332c22656e636f64696e6722
    3a227261772d626772222c227061796c6f61644c656e677468223a362c226372
    633332223a343234323735383137362c2264726f70706564223a307d
    0000ff 00ff00
  `,
  header: {
    type: 'frame',
    seq: 0,
    captureTime: 1700000000000,
    width: 2,
    height: 1,
    channels: 3,
    encoding: 'raw-bgr',
    payloadLength: 6,
    crc32: 0xfce35a20,
    dropped: 0,
  },
  payloadHex: '0000ff00ff00',
};

/**
 * A 16x16 mid-grey picture as one H.264 access unit, an IDR keyframe (x264 ultrafast, its SEI left
 * out): AUD, SPS (Constrained Baseline, level 1.0), PPS, IDR slice. Also the example of
 * PROTOCOL.md section 4.6.
 */
export const h264Keyframe: GoldenVector = {
  name: 'h264 keyframe',
  hex: `
    00000000000000e5
    000000ac
    7b2274797065223a226672616d65222c22736571223a302c2263617074757265
    54696d65223a313730303030303030303030302c227769647468223a31362c22
    686569676874223a31362c226368616e6e656c73223a332c22656e636f64696e
    67223a2268323634222c227061796c6f61644c656e677468223a35332c226372
    633332223a313732363532363235332c2264726f70706564223a302c226b6579
    6672616d65223a747275657d
    00000001 0910
    00000001 6742c00ada7b016a04040c80000003008000001e47891350
    00000001 68ce05f2
    000001 6588843a26280380
  `,
  header: {
    type: 'frame',
    seq: 0,
    captureTime: 1700000000000,
    width: 16,
    height: 16,
    channels: 3,
    encoding: 'h264',
    payloadLength: 53,
    crc32: 1726526253,
    dropped: 0,
    keyframe: true,
  },
  payloadHex: '000000010910000000016742c00ada7b016a04040c80000003008000001e478913500000000168ce05f20000016588843a26280380',
};

export const byeMessage: GoldenVector = {
  name: 'bye',
  hex: `
    000000000000002c
    00000028
    7b2274797065223a22627965222c22726561736f6e223a2273656e6465722073
    746f70706564227d
  `,
  header: { type: 'bye', reason: 'sender stopped' },
  payloadHex: '',
};

export const errorMessage: GoldenVector = {
  name: 'error',
  hex: `
    0000000000000055
    00000051
    7b2274797065223a226572726f72222c22636f6465223a224552525f43484543
    4b53554d222c22726561736f6e223a226672616d652037207061796c6f616420
    4352432d3332206d69736d61746368227d
  `,
  header: { type: 'error', code: 'ERR_CHECKSUM', reason: 'frame 7 payload CRC-32 mismatch' },
  payloadHex: '',
};

/** In handshake order, as one connection would carry them. */
export const goldenVectors: readonly GoldenVector[] = [
  helloFromReceiver,
  helloFromSender,
  rawFrame,
  jpegFrame,
  h264Keyframe,
  byeMessage,
  errorMessage,
];
