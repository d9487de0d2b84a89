import { LatestWinsWriter } from './latest-wins-writer';

/** A destination that accepts `capacity` frames before it asks for a drain, and records what it got. */
function destination(capacity = Infinity) {
  const written: number[] = [];
  return {
    written,
    send: (frame: number) => {
      written.push(frame);
      return written.length % capacity !== 0;
    },
  };
}

describe('LatestWinsWriter', () => {
  it('sends at once while the destination keeps up', () => {
    const dest = destination();
    const taken: number[] = [];
    const writer = new LatestWinsWriter<number>({ send: dest.send, taken: (f) => taken.push(f) });
    [1, 2, 3].forEach((f) => writer.offer(f));
    expect(dest.written).toEqual([1, 2, 3]);
    expect(taken).toEqual([1, 2, 3]);
    expect(writer.waiting).toBeUndefined();
  });

  it('keeps only the newest frame while the destination is full, and reports the ones it replaced', () => {
    const dest = destination(1);
    const dropped: number[] = [];
    let now = 100;
    const writer = new LatestWinsWriter<number>({ send: dest.send, dropped: (f) => dropped.push(f), now: () => now });
    writer.offer(1);
    expect(writer.blocked).toBe(true);
    [2, 3, 4].forEach((f) => writer.offer(f));
    expect(dest.written).toEqual([1]);
    expect(dropped).toEqual([2, 3]);
    expect(writer.waiting).toBe(4);
    now = 350;
    expect(writer.blockedForMs()).toBe(250);
    writer.drained();
    expect(dest.written).toEqual([1, 4]);
    expect(writer.blockedForMs()).toBe(0); // the new write asked for a drain again, just now
  });

  it('holds the frame while the window does not admit it, and sends it on retry once it does', () => {
    const dest = destination();
    let open = false;
    const writer = new LatestWinsWriter<number>({ send: dest.send, admits: () => open });
    writer.offer(7);
    writer.retry();
    expect(dest.written).toEqual([]);
    open = true;
    writer.retry();
    expect(dest.written).toEqual([7]);
    writer.retry();
    expect(dest.written).toEqual([7]); // nothing twice
  });

  it('drops the waiting frame and every later one once closed', () => {
    const dropped: number[] = [];
    const writer = new LatestWinsWriter<number>({ send: () => false, dropped: (f) => dropped.push(f) });
    writer.offer(1);
    writer.offer(2);
    writer.close();
    writer.offer(3);
    writer.drained();
    expect(dropped).toEqual([2, 3]);
  });
});
