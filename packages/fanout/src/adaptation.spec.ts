import { RungChooser } from './adaptation';

// Rung bitrates (bytes/s) of the 720p test-pattern ladder at 30 fps.
const ladder = [1_311_000, 959_000, 819_000, 629_000, 518_000, 365_000, 301_000, 159_000];
const rate = (r: number) => ladder[r]!;

describe('RungChooser', () => {
  it('stays on rung 0 until the capacity is known, and when adaptation is off', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, undefined, rate)).toBe(0);
    const off = new RungChooser({ rungs: ladder.length, enabled: false });
    expect(off.update(0, 100_000, rate)).toBe(0);
  });

  it('goes down at once to the best rung that fits a link at 55 % of the stream', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, 0.55 * ladder[0]!, rate)).toBe(3);
  });

  it('keeps a rung slightly over the capacity rather than drop to one far under it', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    chooser.update(0, 600_000, rate);
    expect(chooser.rung).toBe(4);
    // 629 kB/s on a 590 kB/s link is within 10 %: no change.
    const held = new RungChooser({ rungs: ladder.length });
    held.update(0, 800_000, rate);
    expect(held.update(10, 590_000, rate)).toBe(held.rung);
  });

  it('goes up only after a better rung has fitted for the hold time, then straight to the best one', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000 });
    chooser.update(0, 0.25 * ladder[0]!, rate);
    expect(chooser.rung).toBe(6);
    expect(chooser.update(100, 10 * ladder[0]!, rate)).toBe(6);
    expect(chooser.update(900, 10 * ladder[0]!, rate)).toBe(6);
    expect(chooser.update(1100, 10 * ladder[0]!, rate)).toBe(0);
  });

  it('starts the hold again when the better rung stops fitting', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000 });
    chooser.update(0, 310_000, rate);
    chooser.update(100, 2_000_000, rate);
    chooser.update(600, 310_000, rate);
    expect(chooser.update(1200, 2_000_000, rate)).toBe(6);
    expect(chooser.update(2200, 2_000_000, rate)).toBe(0);
  });

  it('stays on the last rung when even that is too much', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, 10_000, rate)).toBe(7);
    expect(chooser.update(10, 10_000, rate)).toBe(7);
  });
});
