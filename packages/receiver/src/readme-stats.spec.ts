// Keeps the README's account of the receiver's figures honest: the once-a-second text line, the
// words it explains, and the --stats-json table, against what ReceiverStats and formatStatsLine write.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rungLadder } from '@camstream/fanout';
import { formatRung, formatStatsLine, ReceiverStats } from './stats';

const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');

/** The receiver's part of the README: from its options to the next heading. */
const receiverSection = (() => {
  const start = readme.indexOf('Receiver: `HOST[:PORT]`');
  if (start < 0) throw new Error('README.md has no paragraph on the receiver\'s options');
  const end = readme.indexOf('\n#', start);
  return readme.slice(start, end < 0 ? undefined : end);
})();

/** Figures as a receiver of the README's example stream has them: 1280x720 JPEG q80, rungs as the sender announces them. */
function exampleStats(): ReceiverStats {
  const stats = new ReceiverStats();
  stats.streamStarted(rungLadder('jpeg', 1280, 720, 80));
  stats.frameReceived({ payloadBytes: 35_000, rung: 0, declaredDrops: 0, undeclaredGap: 0 });
  stats.frameDecoded(4.2);
  stats.frameShown();
  return stats;
}

/** Every number replaced, so that two lines compare by their words and layout. */
const shape = (line: string) => line.replace(/\d+(\.\d+)?/g, '#');

describe('README.md on the receiver', () => {
  it('shows the once-a-second line as formatStatsLine writes it, with the rungs a 1280x720 q80 stream has', () => {
    const example = /^ {4}(received .*)$/m.exec(receiverSection)?.[1];
    expect(example).toBeDefined();
    const summary = exampleStats().summary();
    expect(shape(example!)).toBe(shape(formatStatsLine(summary)));
    expect(example).toContain(`${formatRung(summary.rung)} (`);
  });

  it('explains every figure of that line', () => {
    for (const figure of ['received', 'decoded', 'shown', 'latency', 'rung', 'dropped by sender', 'skipped', 'gaps', 'corrupt', 'total']) {
      expect({ figure, explained: receiverSection.includes(`*${figure}*`) }).toEqual({ figure, explained: true });
    }
  });

  it('lists every field of a --stats-json line in its table, and no other', () => {
    const table = receiverSection.slice(receiverSection.indexOf('| field | meaning |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
    const documented = rows.map((row) => /^\| `(\w+)` \|/.exec(row)?.[1] ?? `unreadable row: ${row}`);
    // What the app prints (cli.ts): the kind and time, then the snapshot.
    const printed = Object.keys({ kind: 'interval', time: '', ...exampleStats().takeInterval() });
    expect([...documented].sort()).toEqual([...printed].sort());
  });

  it('describes the fields of the rung object as it has them', () => {
    const row = receiverSection.split('\n').find((line) => line.startsWith('| `rung` |'));
    const described = /`\{ ([^}]*) \}`/.exec(row ?? '')?.[1]?.split(', ').map((field) => field.replace(/\?$/, ''));
    const rung = exampleStats().summary().rung;
    expect(rung).not.toBeNull();
    expect([...(described ?? [])].sort()).toEqual(Object.keys(rung!).sort());
  });
});
