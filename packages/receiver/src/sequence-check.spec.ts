import type { FrameHeader } from '@camstream/protocol';
import { OutOfOrderError, SequenceCheck } from './sequence-check';

const frame = (seq: number, dropped = 0): FrameHeader => ({
  type: 'frame',
  seq,
  captureTime: 1,
  width: 2,
  height: 1,
  channels: 3,
  encoding: 'raw-bgr',
  payloadLength: 6,
  crc32: 0,
  dropped,
});

describe('SequenceCheck', () => {
  it('counts nothing for consecutive frames, whatever the first number is', () => {
    const check = new SequenceCheck();
    for (const seq of [41, 42, 43, 44]) check.accept(frame(seq));
    expect([check.declaredDrops, check.undeclaredGaps]).toEqual([0, 0]);
  });

  it('counts a gap the sender declared as a drop, not as a gap', () => {
    const check = new SequenceCheck();
    check.accept(frame(1, 0));
    check.accept(frame(5, 3));
    check.accept(frame(6, 3));
    expect([check.declaredDrops, check.undeclaredGaps]).toEqual([3, 0]);
  });

  it('counts the undeclared part of a gap', () => {
    const check = new SequenceCheck();
    check.accept(frame(1, 0));
    check.accept(frame(6, 1));
    expect([check.declaredDrops, check.undeclaredGaps]).toEqual([1, 3]);
  });

  it('rejects a repeated or decreasing sequence number, naming both', () => {
    const check = new SequenceCheck();
    check.accept(frame(7));
    expect(() => check.accept(frame(7))).toThrow(OutOfOrderError);
    expect(() => check.accept(frame(3))).toThrow('frame 3 arrived after frame 7');
  });

  it('rejects a drop counter that goes back', () => {
    const check = new SequenceCheck();
    check.accept(frame(1, 5));
    expect(() => check.accept(frame(2, 4))).toThrow(/drop counter went back from 5 to 4/);
  });

  it('starts over on a new connection but keeps the totals', () => {
    const check = new SequenceCheck();
    check.accept(frame(10, 0));
    check.accept(frame(12, 1));
    check.reset();
    check.accept(frame(0, 0));
    check.accept(frame(1, 0));
    expect([check.declaredDrops, check.undeclaredGaps]).toEqual([1, 0]);
  });
});
