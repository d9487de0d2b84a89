// Keeps PROTOCOL.md section 4.3 honest: its flow-control example is replayed through FlowWindow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowWindow } from './flow-window';

const doc = readFileSync(join(__dirname, '..', 'PROTOCOL.md'), 'utf8');
const FRAME_BYTES = 40_000;

interface Row {
  time: number;
  event: string;
  inFlight: number;
  window: number;
  action: string;
}

function exampleRows(): Row[] {
  const block = /<!-- flow-example:start -->([\s\S]*?)<!-- flow-example:end -->/.exec(doc)?.[1];
  if (!block) throw new Error('PROTOCOL.md has no flow-control example');
  return block
    .split('\n')
    .map((line) => line.split('|').map((cell) => cell.trim()))
    .filter((cells) => /^\d+$/.test(cells[1] ?? ''))
    .map((cells) => ({ time: Number(cells[1]), event: cells[2]!, inFlight: Number(cells[3]), window: Number(cells[4]), action: cells[5]! }));
}

describe('PROTOCOL.md flow-control example', () => {
  it('is what FlowWindow does, row by row', () => {
    const flow = new FlowWindow(); // the reference settings, as the document says
    let slot: number | undefined;
    let dropped = 0;
    const sent: Array<{ seq: number; dropped: number }> = [];
    const rows = exampleRows();
    expect(rows.length).toBeGreaterThan(5);
    for (const row of rows) {
      const frame = /^frame (\d+) captured$/.exec(row.event);
      const ack = /^ack (\d+), spanMs (\d+), spanBytes (\d+)$/.exec(row.event);
      if (frame) {
        if (slot !== undefined) dropped++;
        slot = Number(frame[1]);
      } else if (ack) {
        flow.acked({ seq: Number(ack[1]), spanMs: Number(ack[2]), spanBytes: Number(ack[3]) }, row.time);
      } else {
        throw new Error(`unknown event in the example: ${row.event}`);
      }
      expect({ time: row.time, inFlight: flow.inFlightBytes, window: flow.windowBytes }).toEqual({ time: row.time, inFlight: row.inFlight, window: row.window });
      const sends = row.action.startsWith('sends');
      if (slot !== undefined && flow.canSend(FRAME_BYTES)) {
        flow.sent(slot, FRAME_BYTES, row.time);
        sent.push({ seq: slot, dropped });
        const stated = /`dropped` (\d+)/.exec(row.action);
        if (stated) expect(dropped).toBe(Number(stated[1]));
        slot = undefined;
        expect({ time: row.time, sends }).toEqual({ time: row.time, sends: true });
      } else {
        expect({ time: row.time, sends }).toEqual({ time: row.time, sends: false });
      }
    }
    expect(sent).toEqual([
      { seq: 0, dropped: 0 },
      { seq: 1, dropped: 0 },
      { seq: 2, dropped: 0 },
      { seq: 4, dropped: 1 },
    ]);
  });
});
