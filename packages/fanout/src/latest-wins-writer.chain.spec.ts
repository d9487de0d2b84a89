import type { ChainLink } from './chain';
import { LatestWinsWriter } from './latest-wins-writer';

// Inter-coded frames (H.264) through the writer: what waits can no longer be replaced by what
// follows it, a frame whose predecessor was dropped is never sent, and drops are reported in order.

interface Frame {
  seq: number;
  link?: ChainLink;
}

/** Frame `seq` of sequence `sequence` on rung 0; keyframes where asked. */
const chained = (seq: number, keyframe = false, sequence = 1): Frame => ({ seq, link: { rung: 0, sequence, index: seq, keyframe } });

/** A writer over a window that admits frames only while `open`, recording what it sends and the drops reported before each send. */
function harness(options: { maxChainWaitMs?: number } = {}) {
  const state = { open: true, now: 0 };
  const sent: Array<{ seq: number; droppedBefore: number }> = [];
  const dropped: number[] = [];
  let missed = 0;
  const writer = new LatestWinsWriter<Frame>({
    send: (frame) => {
      sent.push({ seq: frame.seq, droppedBefore: dropped.length + missed });
      return true;
    },
    admits: () => state.open,
    dropped: (frame) => dropped.push(frame.seq),
    missed: () => missed++,
    chainOf: (frame) => frame.link,
    now: () => state.now,
    ...options,
  });
  return { writer, state, sent, dropped, missed: () => missed };
}

describe('LatestWinsWriter with inter-coded frames', () => {
  it('sends a chain in order while the window admits it, and queues what follows a waiting frame', () => {
    const { writer, state, sent, dropped } = harness();
    writer.offer(chained(0, true));
    state.open = false;
    [1, 2, 3].forEach((seq) => writer.offer(chained(seq)));
    expect(writer.waitingCount).toBe(3);
    state.open = true;
    writer.retry();
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    expect(dropped).toEqual([]);
  });

  it('never sends a frame whose predecessor was dropped: a destination that fell behind skips to the next keyframe', () => {
    const { writer, state, sent, dropped } = harness({ maxChainWaitMs: 100 });
    writer.offer(chained(0, true));
    state.open = false;
    writer.offer(chained(1));
    state.now = 50;
    writer.offer(chained(2));
    state.now = 150; // frame 1 has waited 150 ms: everything waiting gives way, and this one too
    writer.offer(chained(3));
    expect(dropped).toEqual([1, 2, 3]);
    state.open = true;
    writer.offer(chained(4)); // follows 3, which was dropped
    writer.offer(chained(5));
    expect(sent.map((s) => s.seq)).toEqual([0]);
    writer.offer(chained(6, true));
    writer.offer(chained(7));
    expect(sent.map((s) => s.seq)).toEqual([0, 6, 7]);
    expect(dropped).toEqual([1, 2, 3, 4, 5]);
    // Every frame offered was sent or dropped, once.
    expect([...sent.map((s) => s.seq), ...dropped].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('lets a keyframe replace what waits, and takes a frame of another sequence only from its keyframe', () => {
    const { writer, state, sent, dropped } = harness();
    state.open = false;
    writer.offer(chained(0, true));
    writer.offer(chained(1));
    writer.offer(chained(2, true));
    expect(dropped).toEqual([0, 1]);
    writer.offer({ seq: 3, link: { rung: 1, sequence: 2, index: 3, keyframe: false } });
    state.open = true;
    writer.retry();
    expect(sent.map((s) => s.seq)).toEqual([2]);
    expect(dropped).toEqual([0, 1, 3]);
  });

  it('reports a drop behind a waiting frame only once that frame went, so counts sent with each frame cover the frames before it', () => {
    const { writer, state, sent, dropped } = harness();
    writer.offer(chained(0, true));
    state.open = false;
    writer.offer(chained(1));
    writer.offer({ seq: 2, link: { rung: 0, sequence: 9, index: 2, keyframe: false } }); // undecodable here
    writer.missed(); // seq 3 never came: its encoder made nothing
    expect(dropped).toEqual([]);
    state.open = true;
    writer.retry();
    expect(sent).toEqual([
      { seq: 0, droppedBefore: 0 },
      { seq: 1, droppedBefore: 0 },
    ]);
    expect(dropped).toEqual([2]);
    writer.offer(chained(4, true));
    expect(sent.at(-1)).toEqual({ seq: 4, droppedBefore: 2 });
  });

  it('goes on with the chain after a frame that never came', () => {
    const { writer, sent, missed } = harness();
    writer.offer(chained(0, true));
    writer.missed();
    writer.offer({ seq: 2, link: { rung: 0, sequence: 1, index: 1, keyframe: false } });
    expect(sent.map((s) => s.seq)).toEqual([0, 2]);
    expect(missed()).toBe(1);
  });

  it('drops the chain after a frame that stands alone (a JPEG in between): the next chained frame needs a keyframe', () => {
    const { writer, sent, dropped } = harness();
    writer.offer(chained(0, true));
    writer.offer({ seq: 1 });
    writer.offer(chained(2));
    writer.offer(chained(3, true));
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 3]);
    expect(dropped).toEqual([2]);
    expect(writer.chainPosition).toEqual({ rung: 0, sequence: 1, index: 3, keyframe: true });
  });
});
