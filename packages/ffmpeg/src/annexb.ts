/**
 * H.264 Annex B byte streams (ITU-T H.264 Annex B and section 7): NAL units behind start codes,
 * access units that begin with an access unit delimiter (AUD), and the few fields of a sequence
 * parameter set (SPS) that a receiver needs before decoding: picture size, profile and level.
 *
 * Everything here reads bytes that may come from a hostile peer. Sizes and counts are checked
 * against limits before anything is kept, every read stays inside the buffer, and bytes that the
 * standard forbids (00 00 02 inside a NAL unit, an emulation prevention byte followed by more
 * than 3, a forbidden_zero_bit of 1) are refused with an AnnexBError that says where.
 */
import { AnnexBError } from './errors';

/** nal_unit_type values (H.264 table 7-1) that this package looks at. */
export const NalType = {
  SLICE: 1,
  SLICE_PARTITION_A: 2,
  SLICE_PARTITION_C: 4,
  IDR_SLICE: 5,
  SEI: 6,
  SPS: 7,
  PPS: 8,
  AUD: 9,
  END_OF_SEQUENCE: 10,
  END_OF_STREAM: 11,
  FILLER: 12,
} as const;

export interface AnnexBLimits {
  /** Largest access unit accepted, in bytes. */
  maxAccessUnitBytes: number;
  /** Most NAL units in one access unit. */
  maxNalUnits: number;
}

/**
 * 16 MiB is far above any real access unit (x264 never writes more than the raw picture, which
 * is 6 MiB at 1080p), yet bounded; 1024 NAL units leave room for one slice per macroblock row
 * of a 16384-pixel-tall picture.
 */
export const DEFAULT_ANNEXB_LIMITS: Readonly<AnnexBLimits> = { maxAccessUnitBytes: 16 * 1024 * 1024, maxNalUnits: 1024 };

/** Most bytes of an SPS NAL unit we parse: the largest real ones (scaling lists, VUI) are a few hundred. */
const MAX_SPS_BYTES = 4096;
/** The protocol's largest picture side (PROTOCOL.md section 2). */
const MAX_PICTURE_SIDE = 16384;

export interface NalUnit {
  /** nal_unit_type, 0..31. */
  readonly type: number;
  /** nal_ref_idc, 0..3 (0: nothing refers to it). */
  readonly refIdc: number;
  /** Where its start code begins in the bytes it was read from. */
  readonly offset: number;
  /** The NAL unit: header byte and payload (emulation prevention bytes still in), no start code. */
  readonly data: Buffer;
}

const ZERO_PAIR = Buffer.from([0, 0]);

function hex(offset: number): string {
  return `0x${offset.toString(16)}`;
}

/**
 * Yields the NAL units of Annex B bytes in order. The bytes must begin with a start code
 * (00 00 01, optionally after more zero bytes); zero bytes after a NAL unit are trailing_zero_8bits
 * and belong to no NAL unit. Throws AnnexBError at the first malformed byte.
 */
export function* iterateNalUnits(bytes: Buffer): Generator<NalUnit> {
  let at = startCodeEnd(bytes, 0);
  if (at < 0) throw new AnnexBError(`Annex B data must begin with a start code (00 00 01); it begins with ${bytes.subarray(0, 4).toString('hex') || 'nothing'}`);
  for (;;) {
    const start = at;
    // A NAL unit ends where 00 00 00 or 00 00 01 begins, or at the end of the bytes.
    let end = bytes.length;
    let next = -1;
    let search = start;
    for (;;) {
      const zeros = bytes.indexOf(ZERO_PAIR, search);
      if (zeros < 0) break;
      const third = bytes[zeros + 2];
      if (third === undefined || third === 0 || third === 1) {
        end = zeros;
        next = startCodeEnd(bytes, zeros);
        if (next === -2) throw new AnnexBError(`zero bytes at ${hex(zeros)} are followed by neither a start code nor the end of the data`);
        break;
      }
      if (third === 2) throw new AnnexBError(`the bytes 00 00 02 at ${hex(zeros)} may not occur inside a NAL unit`);
      if (third === 3) {
        // Emulation prevention: 00 00 03 protects a following 00..03 (or ends the NAL unit).
        const protectedByte = bytes[zeros + 3];
        if (protectedByte !== undefined && protectedByte > 3) {
          throw new AnnexBError(`emulation prevention byte at ${hex(zeros + 2)} is followed by ${hex(protectedByte)}, not 0x00..0x03`);
        }
        search = zeros + 3;
        continue;
      }
      search = zeros + 3;
    }
    if (end === start) throw new AnnexBError(`empty NAL unit after the start code ending at ${hex(start)}`);
    const header = bytes[start]!;
    if (header & 0x80) throw new AnnexBError(`NAL unit at ${hex(start)} has its forbidden_zero_bit set (header ${hex(header)})`);
    const offset = start - 3;
    yield { type: header & 0x1f, refIdc: (header >> 5) & 3, offset: bytes[offset - 1] === 0 && offset > 0 ? offset - 1 : offset, data: bytes.subarray(start, end) };
    if (next < 0) return;
    at = next;
  }
}

/**
 * Where the NAL unit after the zero bytes at `from` begins: the offset after 00 00 (00 ...) 01;
 * -1 if only zero bytes follow (the end); -2 if the zeros end in anything else.
 */
function startCodeEnd(bytes: Buffer, from: number): number {
  let at = from;
  while (at < bytes.length && bytes[at] === 0) at++;
  if (at === bytes.length) return -1;
  if (bytes[at] === 1 && at - from >= 2) return at + 1;
  return -2;
}

/** The NAL units of one access unit, within the limits; throws AnnexBError otherwise. */
export function readNalUnits(accessUnit: Buffer, limits: Partial<AnnexBLimits> = {}): NalUnit[] {
  const { maxAccessUnitBytes, maxNalUnits } = { ...DEFAULT_ANNEXB_LIMITS, ...limits };
  if (accessUnit.length > maxAccessUnitBytes) {
    throw new AnnexBError(`access unit of ${accessUnit.length} bytes is over the limit of ${maxAccessUnitBytes}`);
  }
  const units: NalUnit[] = [];
  for (const unit of iterateNalUnits(accessUnit)) {
    if (units.length === maxNalUnits) throw new AnnexBError(`access unit has more than ${maxNalUnits} NAL units`);
    units.push(unit);
  }
  return units;
}

/**
 * Splits an Annex B byte stream into access units, each beginning with its AUD (as x264 writes
 * them with aud=1). The stream must begin with an AUD; each access unit is a view of `stream`.
 */
export function splitAccessUnits(stream: Buffer, limits: Partial<AnnexBLimits> = {}): Buffer[] {
  const { maxAccessUnitBytes, maxNalUnits } = { ...DEFAULT_ANNEXB_LIMITS, ...limits };
  const starts: number[] = [];
  let unitsInCurrent = 0;
  for (const unit of iterateNalUnits(stream)) {
    if (unit.type === NalType.AUD) {
      checkAccessUnitSize(starts, unit.offset, maxAccessUnitBytes);
      starts.push(unit.offset);
      unitsInCurrent = 0;
    } else if (starts.length === 0) {
      throw new AnnexBError(`the stream must begin with an access unit delimiter; its first NAL unit has type ${unit.type}`);
    }
    if (++unitsInCurrent > maxNalUnits) throw new AnnexBError(`access unit ${starts.length - 1} has more than ${maxNalUnits} NAL units`);
  }
  checkAccessUnitSize(starts, stream.length, maxAccessUnitBytes);
  return starts.map((start, index) => stream.subarray(start, starts[index + 1] ?? stream.length));
}

function checkAccessUnitSize(starts: number[], end: number, maxBytes: number): void {
  const last = starts[starts.length - 1];
  if (last !== undefined && end - last > maxBytes) {
    throw new AnnexBError(`access unit ${starts.length - 1} has ${end - last} bytes, over the limit of ${maxBytes}`);
  }
}

export interface AccessUnitInfo {
  /** nal_unit_type of each NAL unit, in order. */
  readonly nalTypes: number[];
  /** True when its picture is an IDR picture (NAL type 5): decoding can start here. */
  readonly keyframe: boolean;
  /** The first SPS in it, parsed; undefined when it has none. */
  readonly sps: SpsInfo | undefined;
  /** True when it carries a PPS. */
  readonly hasPps: boolean;
}

/**
 * Reads an access unit's NAL units and checks that it is one coded picture: at least one slice,
 * all slices IDR or all not, no data partitioning (Extended profile, which FFmpeg cannot decode);
 * parses its SPS if it has one. Throws AnnexBError otherwise.
 */
export function inspectAccessUnit(accessUnit: Buffer, limits: Partial<AnnexBLimits> = {}): AccessUnitInfo {
  const units = readNalUnits(accessUnit, limits);
  let idrSlices = 0;
  let otherSlices = 0;
  let sps: SpsInfo | undefined;
  let hasPps = false;
  for (const unit of units) {
    if (unit.type === NalType.IDR_SLICE) idrSlices++;
    else if (unit.type === NalType.SLICE) otherSlices++;
    else if (unit.type >= NalType.SLICE_PARTITION_A && unit.type <= NalType.SLICE_PARTITION_C) {
      throw new AnnexBError(`access unit has a data-partitioned slice (NAL type ${unit.type}), which is not supported`);
    } else if (unit.type === NalType.SPS) sps ??= parseSps(unit.data);
    else if (unit.type === NalType.PPS) hasPps = true;
  }
  if (idrSlices === 0 && otherSlices === 0) {
    throw new AnnexBError(`access unit has no slice (NAL types ${units.map((unit) => unit.type).join(',')}): it holds no picture`);
  }
  if (idrSlices > 0 && otherSlices > 0) throw new AnnexBError(`access unit mixes IDR and non-IDR slices`);
  return { nalTypes: units.map((unit) => unit.type), keyframe: idrSlices > 0, sps, hasPps };
}

/** True when the access unit holds an IDR picture (a NAL unit of type 5). Throws AnnexBError on malformed bytes. */
export function isKeyframe(accessUnit: Buffer, limits: Partial<AnnexBLimits> = {}): boolean {
  return readNalUnits(accessUnit, limits).some((unit) => unit.type === NalType.IDR_SLICE);
}

/** Removes emulation prevention bytes (the 03 of every 00 00 03): the NAL unit's RBSP. */
export function unescapeRbsp(nal: Buffer): Buffer {
  const out = Buffer.allocUnsafe(nal.length);
  let length = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const byte = nal[i]!;
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    out[length++] = byte;
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, length);
}

export interface SpsInfo {
  readonly profileIdc: number;
  /** The byte of constraint_set0..5 flags and reserved bits, as it appears in codec strings. */
  readonly constraintFlags: number;
  readonly levelIdc: number;
  readonly spsId: number;
  /** 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4. */
  readonly chromaFormatIdc: number;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  readonly frameMbsOnly: boolean;
  /** The picture size after cropping: what a decoder outputs. */
  readonly width: number;
  readonly height: number;
}

/** Profiles whose SPS carries chroma format, bit depths and scaling lists (H.264 7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * Parses an SPS NAL unit (header byte included, emulation prevention bytes still in) up to the
 * frame cropping fields; the VUI is not read. Throws AnnexBError on anything out of range.
 */
export function parseSps(nal: Buffer): SpsInfo {
  if (nal.length > MAX_SPS_BYTES) throw new AnnexBError(`SPS of ${nal.length} bytes is over the limit of ${MAX_SPS_BYTES}`);
  if ((nal[0]! & 0x1f) !== NalType.SPS) throw new AnnexBError(`not an SPS: NAL type ${nal[0]! & 0x1f}`);
  const bits = new BitReader(unescapeRbsp(nal).subarray(1), 'SPS');
  const profileIdc = bits.u(8);
  const constraintFlags = bits.u(8);
  const levelIdc = bits.u(8);
  const spsId = bits.ueMax(31, 'seq_parameter_set_id');
  let chromaFormatIdc = 1;
  let separateColourPlanes = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = bits.ueMax(3, 'chroma_format_idc');
    if (chromaFormatIdc === 3) separateColourPlanes = bits.flag();
    bitDepthLuma = 8 + bits.ueMax(6, 'bit_depth_luma_minus8');
    bitDepthChroma = 8 + bits.ueMax(6, 'bit_depth_chroma_minus8');
    bits.flag(); // qpprime_y_zero_transform_bypass_flag
    if (bits.flag()) {
      // seq_scaling_matrix_present_flag: skip the lists (7.3.2.1.1.1)
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (bits.flag()) skipScalingList(bits, i < 6 ? 16 : 64);
      }
    }
  }
  bits.ueMax(12, 'log2_max_frame_num_minus4');
  const pocType = bits.ueMax(2, 'pic_order_cnt_type');
  if (pocType === 0) {
    bits.ueMax(12, 'log2_max_pic_order_cnt_lsb_minus4');
  } else if (pocType === 1) {
    bits.flag(); // delta_pic_order_always_zero_flag
    bits.se(); // offset_for_non_ref_pic
    bits.se(); // offset_for_top_to_bottom_field
    const cycle = bits.ueMax(255, 'num_ref_frames_in_pic_order_cnt_cycle');
    for (let i = 0; i < cycle; i++) bits.se();
  }
  bits.ueMax(16, 'max_num_ref_frames');
  bits.flag(); // gaps_in_frame_num_value_allowed_flag
  const widthInMbs = bits.ueMax(MAX_PICTURE_SIDE / 16 - 1, 'pic_width_in_mbs_minus1') + 1;
  const heightInMapUnits = bits.ueMax(MAX_PICTURE_SIDE / 16 - 1, 'pic_height_in_map_units_minus1') + 1;
  const frameMbsOnly = bits.flag();
  if (!frameMbsOnly) bits.flag(); // mb_adaptive_frame_field_flag
  bits.flag(); // direct_8x8_inference_flag
  const codedWidth = widthInMbs * 16;
  const codedHeight = (frameMbsOnly ? 1 : 2) * heightInMapUnits * 16;
  let width = codedWidth;
  let height = codedHeight;
  if (bits.flag()) {
    // frame_cropping_flag: offsets in chroma sample units (H.264 7.4.2.1.1, equations 7-19 to 7-22)
    const chromaArrayType = separateColourPlanes ? 0 : chromaFormatIdc;
    const cropUnitX = chromaArrayType === 0 ? 1 : chromaArrayType === 3 ? 1 : 2;
    const cropUnitY = (chromaArrayType === 0 ? 1 : chromaArrayType === 1 ? 2 : 1) * (frameMbsOnly ? 1 : 2);
    const [left, right, top, bottom] = [0, 0, 0, 0].map(() => bits.ueMax(MAX_PICTURE_SIDE, 'frame_crop_offset'));
    width -= cropUnitX * (left! + right!);
    height -= cropUnitY * (top! + bottom!);
    if (width < 1 || height < 1) throw new AnnexBError(`SPS cropping leaves no picture (${codedWidth}x${codedHeight} cropped to ${width}x${height})`);
  }
  if (codedHeight > MAX_PICTURE_SIDE) throw new AnnexBError(`SPS picture height ${codedHeight} is over ${MAX_PICTURE_SIDE}`);
  return { profileIdc, constraintFlags, levelIdc, spsId, chromaFormatIdc, bitDepthLuma, bitDepthChroma, frameMbsOnly, width, height };
}

function skipScalingList(bits: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = bits.se();
      if (delta < -128 || delta > 127) throw new AnnexBError(`SPS scaling list delta ${delta} is outside -128..127`);
      next = (last + delta + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/**
 * The RFC 6381 codec string of a stream with this SPS, "avc1.PPCCLL" (profile, constraint flags,
 * level as two hex digits each), as WebCodecs' VideoDecoder.configure and MSE want it.
 */
export function avcCodecString(sps: Pick<SpsInfo, 'profileIdc' | 'constraintFlags' | 'levelIdc'>): string {
  const byte = (value: number) => value.toString(16).toUpperCase().padStart(2, '0');
  return `avc1.${byte(sps.profileIdc)}${byte(sps.constraintFlags)}${byte(sps.levelIdc)}`;
}

/** Reads bits most significant first, never past the end; exp-Golomb codes of at most 32 bits. */
class BitReader {
  private position = 0;

  constructor(
    private readonly bytes: Buffer,
    private readonly what: string,
  ) {}

  u(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) value = value * 2 + this.bit();
    return value;
  }

  flag(): boolean {
    return this.bit() === 1;
  }

  /** ue(v): unsigned exp-Golomb. */
  ue(): number {
    let leadingZeros = 0;
    while (this.bit() === 0) {
      if (++leadingZeros > 31) throw new AnnexBError(`${this.what}: exp-Golomb code longer than 32 bits at bit ${this.position}`);
    }
    return 2 ** leadingZeros - 1 + this.u(leadingZeros);
  }

  ueMax(max: number, field: string): number {
    const value = this.ue();
    if (value > max) throw new AnnexBError(`${this.what}: ${field} is ${value}, more than ${max}`);
    return value;
  }

  /** se(v): signed exp-Golomb. */
  se(): number {
    const code = this.ue();
    return code % 2 === 1 ? (code + 1) / 2 : -(code / 2);
  }

  private bit(): number {
    const byte = this.bytes[this.position >> 3];
    if (byte === undefined) throw new AnnexBError(`${this.what} ends too early (after ${this.bytes.length} bytes)`);
    const bit = (byte >> (7 - (this.position & 7))) & 1;
    this.position++;
    return bit;
  }
}
