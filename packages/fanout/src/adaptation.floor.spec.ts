import { RungChooser, type LinkEstimate } from './adaptation';

// A viewer that cannot decode the best rungs (a browser without WebCodecs, on an H.264 stream
// whose rung 0 is H.264 and whose other rungs are JPEG) starts at its floor and never goes above it.

const ladder = [500_000, 1_300_000, 900_000, 600_000];
const rate = (r: number) => ladder[r]!;
const link = (capacity: number): LinkEstimate => ({ capacityBytesPerSecond: capacity, sustainedCapacityBytesPerSecond: capacity, measuredCapacityBytesPerSecond: capacity, deliveredBytesPerSecond: capacity });

describe('RungChooser with a floor', () => {
  it('starts at the floor, and stays there with adaptation off', () => {
    expect(new RungChooser({ rungs: 4, floor: 1 }).rung).toBe(1);
    expect(new RungChooser({ rungs: 4, floor: 1, enabled: false }).update(0, link(10_000_000), rate)).toBe(1);
  });

  it('goes down from the floor on a slow link and back up to it, never past it', () => {
    const chooser = new RungChooser({ rungs: 4, floor: 1 });
    expect(chooser.update(0, link(700_000), rate)).toBe(3);
    let rung = chooser.rung;
    for (let t = 0; t < 20_000; t += 33) {
      chooser.frameSent(t);
      rung = chooser.update(t, link(100_000_000), rate);
    }
    // Rung 0 would fit the link best of all, but this viewer cannot take it.
    expect(rung).toBe(1);
  });
});
