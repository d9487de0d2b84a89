import {
  avcCodecString,
  inspectAccessUnit,
  isKeyframe,
  iterateNalUnits,
  NalType,
  parseSps,
  readNalUnits,
  splitAccessUnits,
  unescapeRbsp,
} from './annexb';
import { AnnexBError } from './errors';

/** SPS NAL units as x264 (Debian ffmpeg 5.1) wrote them for testsrc at these sizes. */
const SPS_720P_BASELINE = Buffer.from('6742c01fda014016ec0440000003004000000f23c60ca8', 'hex');
const SPS_1080P_HIGH = Buffer.from('67640028acb403c0113f2e0220000003002000000791e30654', 'hex');
const SPS_642X362_HIGH444 = Buffer.from('67f4001e919680a42fe3e7c044000003000400000300f23c58ba80', 'hex');
const PPS = Buffer.from('68ce3c80', 'hex');

const startCode = Buffer.from([0, 0, 0, 1]);
const shortStartCode = Buffer.from([0, 0, 1]);
const nal = (type: number, ...payload: number[]) => Buffer.from([0x60 | type, ...payload, 0x80]);
const annexB = (...units: Buffer[]) => Buffer.concat(units.flatMap((unit) => [startCode, unit]));
const aud = nal(NalType.AUD);

function annexBError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AnnexBError);
    expect((error as AnnexBError).code).toBe('ERR_ANNEXB');
    return (error as Error).message;
  }
  throw new Error('expected an AnnexBError');
}

describe('NAL units', () => {
  it('reads types, ref_idc and bytes behind 3- and 4-byte start codes, leaving trailing zeros out', () => {
    const bytes = Buffer.concat([startCode, aud, shortStartCode, SPS_720P_BASELINE, startCode, nal(NalType.IDR_SLICE, 1, 2), Buffer.from([0, 0, 0])]);
    const units = readNalUnits(bytes);
    expect(units.map((unit) => unit.type)).toEqual([NalType.AUD, NalType.SPS, NalType.IDR_SLICE]);
    expect(units.map((unit) => unit.refIdc)).toEqual([3, 3, 3]);
    expect(units[1]!.data.equals(SPS_720P_BASELINE)).toBe(true);
    expect(units[2]!.data.equals(nal(NalType.IDR_SLICE, 1, 2))).toBe(true);
    // Each starts where its start code does (the 4-byte one includes its zero_byte).
    expect(units.map((unit) => unit.offset)).toEqual([0, 4 + aud.length, 4 + aud.length + 3 + SPS_720P_BASELINE.length]);
  });

  it('keeps emulation prevention inside a NAL unit and removes it from the RBSP', () => {
    const escaped = Buffer.from([0x65, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x07]);
    const [unit] = readNalUnits(Buffer.concat([startCode, escaped]));
    expect(unit!.data.equals(escaped)).toBe(true);
    expect(unescapeRbsp(escaped).equals(Buffer.from([0x65, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07]))).toBe(true);
  });

  it('refuses bytes the standard forbids, saying where', () => {
    expect(annexBError(() => readNalUnits(Buffer.from([0x67, 0, 0, 1, 0x09])))).toMatch(/must begin with a start code.*67000001/);
    expect(annexBError(() => readNalUnits(Buffer.from([0, 0, 1, 0x65, 0, 0, 2, 7])))).toMatch(/00 00 02 at 0x4/);
    expect(annexBError(() => readNalUnits(Buffer.from([0, 0, 1, 0x65, 0, 0, 3, 9])))).toMatch(/emulation prevention byte at 0x6 is followed by 0x9/);
    expect(annexBError(() => readNalUnits(Buffer.from([0, 0, 1, 0xe5, 1])))).toMatch(/forbidden_zero_bit/);
    expect(annexBError(() => readNalUnits(Buffer.from([0, 0, 1, 0, 0, 1, 0x65])))).toMatch(/empty NAL unit/);
    expect(annexBError(() => readNalUnits(Buffer.from([0, 0, 1, 0x65, 7, 0, 0, 0, 5])))).toMatch(/neither a start code nor the end/);
    expect(annexBError(() => readNalUnits(Buffer.alloc(0)))).toMatch(/begins with nothing/);
  });

  it('enforces the size and count limits before keeping anything', () => {
    const bytes = annexB(aud, nal(NalType.SLICE, 1), nal(NalType.SLICE, 2));
    expect(annexBError(() => readNalUnits(bytes, { maxAccessUnitBytes: bytes.length - 1 }))).toMatch(/over the limit/);
    expect(annexBError(() => readNalUnits(bytes, { maxNalUnits: 2 }))).toMatch(/more than 2 NAL units/);
    expect(readNalUnits(bytes, { maxNalUnits: 3, maxAccessUnitBytes: bytes.length })).toHaveLength(3);
  });

  it('never throws anything but AnnexBError on random bytes with start codes in them', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let parsed = 0;
    for (let round = 0; round < 20_000; round++) {
      const bytes = Buffer.alloc(4 + Math.floor(random() * 40));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random() < 0.3 ? 0 : random() < 0.1 ? Math.floor(random() * 4) : Math.floor(random() * 256);
      if (random() < 0.8) bytes.set([0, 0, 1], 0);
      if (random() < 0.5) bytes[3] = 0x67; // an SPS header: feed the SPS parser garbage too
      try {
        for (const unit of iterateNalUnits(bytes)) {
          if (unit.type === NalType.SPS) {
            try {
              parseSps(unit.data);
            } catch (error) {
              if (!(error instanceof AnnexBError)) throw error;
            }
          }
        }
        parsed++;
      } catch (error) {
        if (!(error instanceof AnnexBError)) throw error;
      }
    }
    expect(parsed).toBeGreaterThan(100); // the generator does make valid streams too
  });
});

describe('access units', () => {
  const keyframe = annexB(aud, SPS_720P_BASELINE, PPS, nal(NalType.SEI, 5), nal(NalType.IDR_SLICE, 0x88, 0x84));
  const pFrame = annexB(aud, nal(NalType.SLICE, 0x9a, 0x02));

  it('splits a stream at its AUDs into views of the stream', () => {
    const stream = Buffer.concat([keyframe, pFrame, pFrame, keyframe]);
    const units = splitAccessUnits(stream);
    expect(units.map((unit) => unit.length)).toEqual([keyframe.length, pFrame.length, pFrame.length, keyframe.length]);
    expect(Buffer.concat(units).equals(stream)).toBe(true);
    expect(units.map((unit) => isKeyframe(unit))).toEqual([true, false, false, true]);
  });

  it('refuses a stream that does not begin with an AUD, and access units over the limits', () => {
    expect(annexBError(() => splitAccessUnits(Buffer.concat([annexB(SPS_720P_BASELINE), pFrame])))).toMatch(/must begin with an access unit delimiter.*type 7/);
    expect(annexBError(() => splitAccessUnits(Buffer.concat([pFrame, keyframe]), { maxAccessUnitBytes: keyframe.length - 1 }))).toMatch(/access unit 1 has \d+ bytes/);
    expect(annexBError(() => splitAccessUnits(Buffer.concat([keyframe, pFrame]), { maxNalUnits: 4 }))).toMatch(/access unit 0 has more than 4/);
  });

  it('tells keyframes, with their SPS, from other pictures', () => {
    const info = inspectAccessUnit(keyframe);
    expect(info).toMatchObject({ keyframe: true, hasPps: true, nalTypes: [9, 7, 8, 6, 5] });
    expect(info.sps).toMatchObject({ width: 1280, height: 720 });
    expect(inspectAccessUnit(pFrame)).toMatchObject({ keyframe: false, sps: undefined, hasPps: false });
  });

  it('refuses access units that are not one picture', () => {
    expect(annexBError(() => inspectAccessUnit(annexB(aud, SPS_720P_BASELINE, PPS)))).toMatch(/no slice \(NAL types 9,7,8\)/);
    expect(annexBError(() => inspectAccessUnit(annexB(aud, nal(NalType.IDR_SLICE, 1), nal(NalType.SLICE, 1))))).toMatch(/mixes IDR and non-IDR/);
    expect(annexBError(() => inspectAccessUnit(annexB(aud, nal(NalType.SLICE_PARTITION_A, 1))))).toMatch(/data-partitioned/);
  });
});

describe('SPS', () => {
  it('reads size, profile and level of a 720p Constrained Baseline SPS', () => {
    const sps = parseSps(SPS_720P_BASELINE);
    expect(sps).toMatchObject({ profileIdc: 66, constraintFlags: 0xc0, levelIdc: 31, chromaFormatIdc: 1, bitDepthLuma: 8, width: 1280, height: 720, frameMbsOnly: true });
    expect(avcCodecString(sps)).toBe('avc1.42C01F');
  });

  it('applies frame cropping: 1080p is coded as 1088 rows (High profile, emulation prevention inside)', () => {
    const sps = parseSps(SPS_1080P_HIGH);
    expect(sps).toMatchObject({ profileIdc: 100, levelIdc: 40, width: 1920, height: 1080 });
    expect(avcCodecString(sps)).toBe('avc1.640028');
  });

  it('crops in luma samples for 4:4:4 (High 4:4:4 Predictive)', () => {
    expect(parseSps(SPS_642X362_HIGH444)).toMatchObject({ profileIdc: 244, chromaFormatIdc: 3, width: 642, height: 362 });
  });

  it('refuses an SPS cut short, out of range, or with an endless exp-Golomb code', () => {
    expect(annexBError(() => parseSps(SPS_720P_BASELINE.subarray(0, 8)))).toMatch(/SPS ends too early/);
    expect(annexBError(() => parseSps(Buffer.from([0x67, 66, 0, 31, 0, 0, 0, 0, 0, 0])))).toMatch(/exp-Golomb code longer than 32 bits/);
    // seq_parameter_set_id 32: ue code 0000 0010 0001 (33 - 1)
    expect(annexBError(() => parseSps(Buffer.from([0x67, 66, 0, 31, 0b00000100, 0b00100000])))).toMatch(/seq_parameter_set_id is 32, more than 31/);
    expect(annexBError(() => parseSps(PPS))).toMatch(/not an SPS: NAL type 8/);
    expect(annexBError(() => parseSps(Buffer.concat([Buffer.from([0x67]), Buffer.alloc(5000, 0xff)])))).toMatch(/over the limit of 4096/);
  });
});
