import { RungChooser, type LinkEstimate } from './adaptation';

// Rung bitrates (bytes/s) of the 720p test-pattern ladder at 30 fps.
const ladder = [1_311_000, 959_000, 819_000, 629_000, 518_000, 365_000, 301_000, 159_000];
const rate = (r: number) => ladder[r]!;
/** A link estimate whose capacity held for the last second (the sustained one is the same unless given; the measured one too, if finite). */
const link = (capacity?: number, delivered?: number, sustained = capacity, measured = capacity !== undefined && Number.isFinite(capacity) ? capacity : undefined): LinkEstimate => ({
  capacityBytesPerSecond: capacity,
  sustainedCapacityBytesPerSecond: sustained,
  measuredCapacityBytesPerSecond: measured,
  deliveredBytesPerSecond: delivered,
});

/** Frames at 30 fps from `from` for `ms`, each sent or dropped as `dropped(i)` says; returns the time after. */
function frames(chooser: RungChooser, from: number, ms: number, dropped: (i: number) => boolean): number {
  let i = 0;
  for (let t = from; t < from + ms; t += 33, i++) {
    if (dropped(i)) chooser.frameDropped(t);
    else chooser.frameSent(t);
  }
  return from + ms;
}

describe('RungChooser', () => {
  it('stays on rung 0 until something is known, and always when adaptation is off', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, link(), rate)).toBe(0);
    const off = new RungChooser({ rungs: ladder.length, enabled: false });
    off.frameDropped(0);
    expect(off.update(0, link(100_000, 100_000), rate)).toBe(0);
  });

  it('goes down at once to the best rung the measured capacity carries (a link at 55 % of the stream)', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, link(0.55 * ladder[0]!), rate)).toBe(3);
  });

  it('keeps a rung slightly over the capacity rather than drop to one far under it', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    chooser.update(0, link(600_000), rate);
    expect(chooser.rung).toBe(4);
    const held = new RungChooser({ rungs: ladder.length });
    held.update(0, link(800_000), rate);
    // 629 kB/s on a 590 kB/s link is within 25 %: no change.
    expect(held.update(10, link(590_000), rate)).toBe(held.rung);
  });

  it('goes down when the window drops a fifth of the frames, though the capacity estimate says all is well', () => {
    const chooser = new RungChooser({ rungs: ladder.length, graceMs: 1500 });
    const now = frames(chooser, 0, 2000, (i) => i % 3 === 0);
    // The estimate flatters the link; what was delivered says 500 kB/s: the best rung under 90 % of it.
    expect(chooser.update(now, link(5_000_000, 500_000), rate)).toBe(5);
  });

  it('gives a new rung a grace period before its drops count', () => {
    const chooser = new RungChooser({ rungs: ladder.length, graceMs: 1500 });
    chooser.update(0, link(0.55 * ladder[0]!), rate);
    const now = frames(chooser, 0, 1000, (i) => i % 2 === 0);
    expect(chooser.update(now, link(0.55 * ladder[0]!), rate)).toBe(3);
  });

  it('goes up only after a better rung has fitted for the hold time without drops, then straight to the best one', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000 });
    chooser.update(0, link(0.25 * ladder[0]!), rate);
    expect(chooser.rung).toBe(6);
    expect(chooser.update(100, link(10 * ladder[0]!), rate)).toBe(6);
    expect(chooser.update(900, link(10 * ladder[0]!), rate)).toBe(6);
    expect(chooser.update(1100, link(10 * ladder[0]!), rate)).toBe(0);
  });

  it('leaves a rung on the capacity of the last second, not on a dip of the last few frames', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    chooser.update(0, link(0.55 * ladder[0]!), rate);
    expect(chooser.rung).toBe(3);
    // Three slow arrivals pull the fast estimate under rung 4; the last second says rung 3 still fits.
    expect(chooser.update(100, link(0.3 * ladder[0]!, undefined, 0.55 * ladder[0]!), rate)).toBe(3);
    // Once the second agrees, it goes.
    expect(chooser.update(600, link(0.3 * ladder[0]!, undefined, 0.3 * ladder[0]!), rate)).toBe(5);
  });

  it('leaves a rung it took on a guess lately on the first frames that say it does not fit (a failed step up)', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000, failedWithinMs: 5000 });
    chooser.update(0, link(0.25 * ladder[0]!), rate);
    expect(chooser.rung).toBe(6);
    // A reading that promises everything (frames that crossed in a shaper's burst): up to rung 0 after the hold.
    chooser.update(100, link(Infinity), rate);
    expect(chooser.update(1100, link(Infinity), rate)).toBe(0);
    // Rung 0's frames measure the link: three of them are enough, though the last second still says Infinity.
    expect(chooser.update(1300, link(0.55 * ladder[0]!, undefined, Infinity), rate)).toBe(3);
    // The rung it fell back to was taken on that measurement: it stays through a dip of a few frames.
    expect(chooser.update(1400, link(0.3 * ladder[0]!, undefined, 0.55 * ladder[0]!), rate)).toBe(3);
    // A rung taken on a measured capacity is left only when the last second agrees.
    const measured = new RungChooser({ rungs: ladder.length, upHoldMs: 1000, failedWithinMs: 5000 });
    measured.update(0, link(0.25 * ladder[0]!), rate);
    measured.update(100, link(0.55 * ladder[0]!), rate);
    expect(measured.update(1100, link(0.55 * ladder[0]!), rate)).toBe(3);
    expect(measured.update(1300, link(0.3 * ladder[0]!, undefined, 0.55 * ladder[0]!), rate)).toBe(3);
  });

  it('takes a rung that failed on a guess again as soon as a measured capacity promises it', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000, failedWithinMs: 5000, backoffMs: 4000 });
    chooser.update(0, link(0.25 * ladder[0]!), rate);
    // Small frames cross in a shaper's burst: a guess at rung 0, which the next frames show does not fit.
    chooser.update(100, link(Infinity), rate);
    expect(chooser.update(1100, link(Infinity), rate)).toBe(0);
    expect(chooser.update(1200, link(0.25 * ladder[0]!, undefined, Infinity), rate)).toBe(6);
    // Another guess would wait out the backoff...
    chooser.update(1300, link(Infinity), rate);
    expect(chooser.update(2400, link(Infinity), rate)).not.toBe(0);
    // ...but the link recovered and larger frames measure it: rung 0 after the hold, backoff or not.
    const rung = chooser.rung;
    chooser.update(2500, link(2 * ladder[0]!), rate);
    expect(chooser.update(3400, link(2 * ladder[0]!), rate)).toBe(rung);
    expect(chooser.update(3500, link(2 * ladder[0]!), rate)).toBe(0);
  });

  it('takes inter-coded rungs up one at a time, only on a measured capacity, and never probes', () => {
    // H.264 bitrate rungs, bytes/s: 100 %, 60 %, 35 %, 20 % of 500 kB/s.
    const h264 = [500_000, 300_000, 175_000, 100_000];
    const bitrate = (r: number) => h264[r]!;
    const chooser = new RungChooser({ rungs: h264.length, interCoded: true, upHoldMs: 1000, probeAfterMs: 3000 });
    chooser.update(0, link(0.55 * h264[0]!), bitrate);
    expect(chooser.rung).toBe(2);
    // Small P-frames cross in the shaper's burst (Infinity); the keyframes measure 275 kB/s: rung 1 does not fit under 0.9 of it.
    let now = frames(chooser, 0, 10_000, () => false);
    for (let t = 100; t <= now; t += 500) chooser.update(t, link(Infinity, undefined, Infinity, 275_000), bitrate);
    expect(chooser.rung).toBe(2);
    // The link recovers: the keyframes measure 2 MB/s. One rung per hold, not straight to rung 0.
    chooser.update(now, link(Infinity, undefined, Infinity, 2_000_000), bitrate);
    now = frames(chooser, now, 1000, () => false);
    expect(chooser.update(now, link(Infinity, undefined, Infinity, 2_000_000), bitrate)).toBe(1);
    chooser.update(now + 100, link(Infinity, undefined, Infinity, 2_000_000), bitrate);
    now = frames(chooser, now + 100, 1000, () => false);
    expect(chooser.update(now, link(Infinity, undefined, Infinity, 2_000_000), bitrate)).toBe(0);
    // A link so fast that no frame could be timed for a while, keyframes included, is fast too.
    const fast = new RungChooser({ rungs: h264.length, interCoded: true, upHoldMs: 1000 });
    fast.update(0, link(0.4 * h264[0]!), bitrate);
    expect(fast.rung).toBe(2);
    fast.update(100, link(Infinity, undefined, Infinity, undefined), bitrate);
    expect(fast.update(1100, link(Infinity, undefined, Infinity, undefined), bitrate)).toBe(1);
  });

  it('does not go up while frames are being dropped', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000 });
    chooser.update(0, link(300_000), rate);
    chooser.update(100, link(10 * ladder[0]!), rate);
    chooser.frameDropped(1050);
    expect(chooser.update(1100, link(10 * ladder[0]!), rate)).toBe(chooser.rung);
    expect(chooser.rung).not.toBe(0);
  });

  it('probes the next better rung after a quiet spell, and backs off, doubling, when the probe fails', () => {
    const chooser = new RungChooser({ rungs: ladder.length, upHoldMs: 1000, probeAfterMs: 3000, failedWithinMs: 5000, backoffMs: 4000, graceMs: 1500 });
    chooser.update(0, link(400_000), rate); // rung 5 (365 kB/s) fits; the estimate promises nothing better
    expect(chooser.rung).toBe(5);
    let now = frames(chooser, 0, 3000, () => false);
    chooser.update(now, link(400_000), rate); // quiet for 3 s: rung 4 is the probe, held 1 s
    now = frames(chooser, now, 1000, () => false);
    expect(chooser.update(now, link(400_000), rate)).toBe(4);
    // The probe drops frames: back to 5 after the grace period, and rung 4 waits 4 s.
    now = frames(chooser, now, 2000, (i) => i % 2 === 0);
    expect(chooser.update(now, link(400_000), rate)).toBe(5);
    const failedAt = now;
    now = frames(chooser, now, 3500, () => false);
    chooser.update(now, link(400_000), rate);
    now = frames(chooser, now, 1000, () => false);
    expect(chooser.update(now, link(400_000), rate)).toBe(5); // 4.5 s later: still backing off
    now = frames(chooser, failedAt, 5000, () => false);
    chooser.update(now, link(400_000), rate);
    now = frames(chooser, now, 1000, () => false);
    expect(chooser.update(now, link(400_000), rate)).toBe(4); // after 4 s + the hold: tried again
    now = frames(chooser, now, 2000, (i) => i % 2 === 0);
    expect(chooser.update(now, link(400_000), rate)).toBe(5);
    // Second failure: 8 s before the next try.
    const secondFailure = now;
    now = frames(chooser, now, 6000, () => false);
    chooser.update(now, link(400_000), rate);
    now = frames(chooser, now, 1000, () => false);
    expect(chooser.update(now, link(400_000), rate)).toBe(5);
    expect(now - secondFailure).toBeLessThan(8000);
  });

  it('stays on the last rung when even that is too much', () => {
    const chooser = new RungChooser({ rungs: ladder.length });
    expect(chooser.update(0, link(10_000), rate)).toBe(7);
    expect(chooser.update(10, link(10_000), rate)).toBe(7);
  });
});
