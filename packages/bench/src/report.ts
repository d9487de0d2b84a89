import type { CellResult, CellSpec, TutorialResult } from './cells';
import { round } from './usage';

/** Median and range of one figure over the repeated runs. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  values: number[];
}

/** The middle value, or the mean of the two middle ones (of 2 runs: their mean); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

export function stat(values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: round(median(sorted), 2), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, values };
}

/** A raw cell's decoded payload bytes per second over what loopback TCP carried just before it (iperf3); undefined when not measured. */
export function loopbackShareOf(cell: CellResult): number | undefined {
  const limit = cell.loopbackBytesPerSecond;
  if (!limit) return undefined;
  return round((cell.receivers[0]!.decodedFps * cell.spec.width * cell.spec.height * 3) / limit, 2);
}

/** Targets on this machine (2 cores), in decoded frames per second at the receiver. */
export const FPS_TARGETS: Record<string, { raw: number; jpeg: number }> = {
  '640x480': { raw: 1000, jpeg: 600 },
  '1280x720': { raw: 400, jpeg: 220 },
  '1920x1080': { raw: 180, jpeg: 90 },
};
export const LATENCY_TARGET = { p50: 10, p99: 25 };
/** Raw, one receiver: at least this share of what loopback TCP carries (iperf3, same run), in every run. */
export const LOOPBACK_SHARE_TARGET = 0.7;
/** JPEG q80 decoded fps, one receiver, of the last bench before flow control (issue 10: stay within 5 %). */
export const PREVIOUS_JPEG_FPS: Record<string, number> = { '640x480': 776, '1280x720': 299, '1920x1080': 138 };
export const PREVIOUS_JPEG_TOLERANCE = 0.05;
/** With N receivers, each must get at least this share of the single-receiver rate. */
export const FAN_OUT_TARGET = 0.95;

export interface Row {
  kind: 'throughput' | 'latency' | 'paced';
  size: string;
  mode: 'raw' | 'jpeg';
  quality: number;
  receivers: number;
  /** Source pacing (0 = as fast as possible). */
  pacedFps: number;
  runs: number;
  /** Decoded fps per receiver: the slowest receiver (the only one when there is one). */
  fpsMin: Stat;
  /** Decoded fps per receiver, mean over receivers. */
  fpsMean: Stat;
  /** Frames received (checked) per second per receiver, mean; differs from decoded when JPEG decoding skips. */
  receivedFps: Stat;
  /** Frames the sender captured and encoded per second (including frames dropped for slow viewers). */
  encodedFps: Stat;
  /** Payload MB/s per receiver, mean. */
  MBps: Stat;
  payloadKB: Stat;
  /** Latency capture -> decoded: median over receivers of p50; worst p99. */
  p50: Stat;
  p99: Stat;
  /** Capture -> received (before decoding): the transport's and encoder's share of the latency. */
  arrivalP50: Stat;
  arrivalP99: Stat;
  /** One decode call, ms (median of the receivers' p50, worst p99). */
  decodeP50: Stat;
  decodeP99: Stat;
  senderCpu: Stat;
  /** Sender CPU time per frame it encoded, ms: efficiency, less sensitive to a busy machine than fps. */
  senderCpuMsPerFrame: Stat;
  /** Receiver CPU time per frame it received, ms (mean over receivers). */
  receiverCpuMsPerFrame: Stat;
  /** Per receiver process, mean. */
  receiverCpu: Stat;
  senderRssMB: Stat;
  /** Largest receiver peak RSS. */
  receiverRssMB: Stat;
  senderDropped: number;
  skipped: number;
  gaps: number;
  corrupt: number;
  /** N receivers: slowest receiver / single-receiver fps of the same run. */
  fanOutRatio?: Stat;
  /** CPU the rest of the machine used before the cell (percent of one core). */
  backgroundCpu: Stat;
  /** CPU the rest of the machine used during the measured window (percent of one core). */
  othersCpu: Stat;
  tutorialFps?: Stat;
  /** Our decoded fps / the tutorial's fps. */
  tutorialRatio?: Stat;
  /** Raw: payload bytes per second / what loopback TCP carried just before (iperf3), per run. */
  loopbackShare?: Stat;
  /** Raw: the loopback limit (iperf3) in frames per second of this size, per run. */
  loopbackFps?: Stat;
  /** JPEG, one receiver: decoded fps / the last bench's (PREVIOUS_JPEG_FPS). */
  previousRatio?: Stat;
  target: string;
  met: boolean | null;
}

export function sizeOf(spec: { width: number; height: number }): string {
  return `${spec.width}x${spec.height}`;
}

function key(spec: CellSpec): string {
  return `${spec.kind} ${sizeOf(spec)} ${spec.encoding} ${spec.receivers} ${spec.fps}`;
}

const medianOf = (xs: number[]) => round(median(xs), 2);

/** Builds the table rows from every run of every cell (runs of a cell are grouped). */
export function buildRows(cells: CellResult[], tutorials: TutorialResult[]): Row[] {
  const groups = new Map<string, CellResult[]>();
  for (const cell of cells) {
    const k = key(cell.spec);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(cell);
  }
  const rows: Row[] = [];
  for (const runs of groups.values()) {
    const spec = runs[0]!.spec;
    const size = sizeOf(spec);
    const mode = spec.encoding === 'jpeg' ? 'jpeg' : 'raw';
    const { kind } = spec;
    const per = (f: (cell: CellResult) => number) => stat(runs.map(f));
    const fpsMin = per((c) => Math.min(...c.receivers.map((r) => r.decodedFps)));
    const row: Row = {
      kind,
      size,
      mode,
      quality: spec.quality,
      receivers: spec.receivers,
      pacedFps: spec.fps,
      runs: runs.length,
      fpsMin,
      fpsMean: per((c) => mean(c.receivers.map((r) => r.decodedFps))),
      receivedFps: per((c) => mean(c.receivers.map((r) => r.receivedFps))),
      encodedFps: per((c) => c.sender.fps),
      MBps: per((c) => mean(c.receivers.map((r) => r.MBps))),
      payloadKB: per((c) => round(c.sender.payloadBytesMean / 1000, 1)),
      p50: per((c) => medianOf(c.receivers.map((r) => r.latencyMs?.p50 ?? NaN))),
      p99: per((c) => Math.max(...c.receivers.map((r) => r.latencyMs?.p99 ?? NaN))),
      arrivalP50: per((c) => medianOf(c.receivers.map((r) => r.arrivalLatencyMs?.p50 ?? NaN))),
      arrivalP99: per((c) => Math.max(...c.receivers.map((r) => r.arrivalLatencyMs?.p99 ?? NaN))),
      decodeP50: per((c) => medianOf(c.receivers.map((r) => r.decodeMs?.p50 ?? NaN))),
      decodeP99: per((c) => Math.max(...c.receivers.map((r) => r.decodeMs?.p99 ?? NaN))),
      senderCpu: per((c) => c.sender.cpuPercent),
      senderCpuMsPerFrame: per((c) => round(((c.sender.userSeconds + c.sender.systemSeconds) * 1000) / Math.max(1, c.sender.frames), 3)),
      receiverCpuMsPerFrame: per((c) => round(mean(c.receivers.map((r) => ((r.userSeconds + r.systemSeconds) * 1000) / Math.max(1, r.received))), 3)),
      receiverCpu: per((c) => round(mean(c.receivers.map((r) => r.cpuPercent)), 1)),
      senderRssMB: per((c) => c.sender.maxRssMB),
      receiverRssMB: per((c) => Math.max(...c.receivers.map((r) => r.maxRssMB))),
      senderDropped: sum(runs.flatMap((c) => c.receivers.map((r) => r.senderDropped))),
      skipped: sum(runs.flatMap((c) => c.receivers.map((r) => r.skipped))),
      gaps: sum(runs.flatMap((c) => c.receivers.map((r) => r.gaps))),
      corrupt: sum(runs.flatMap((c) => c.receivers.map((r) => r.corrupt))),
      backgroundCpu: per((c) => c.backgroundCpuPercent ?? NaN),
      othersCpu: per((c) => c.othersCpuPercent ?? NaN),
      target: '',
      met: null,
    };
    const targets = FPS_TARGETS[size];
    if (kind === 'latency') {
      row.target = `p50 < ${LATENCY_TARGET.p50} ms, p99 < ${LATENCY_TARGET.p99} ms`;
      row.met = row.p50.median < LATENCY_TARGET.p50 && row.p99.median < LATENCY_TARGET.p99;
      if (spec.receivers > 1) {
        row.fanOutRatio = fanOutRatios(cells, runs, spec);
        row.target += `; each >= ${FAN_OUT_TARGET * 100}% of 1 receiver`;
        row.met &&= row.fanOutRatio.median >= FAN_OUT_TARGET;
      }
    } else if (spec.receivers > 1) {
      row.fanOutRatio = fanOutRatios(cells, runs, spec);
      row.target = `each >= ${FAN_OUT_TARGET * 100}% of 1 receiver`;
      row.met = row.fanOutRatio.median >= FAN_OUT_TARGET;
    } else if (kind === 'paced') {
      // A camera at the target rate: every frame should be decoded (1 % slack for pacing jitter).
      row.target = `decodes >= 99% of ${spec.fps} fps`;
      row.met = row.fpsMin.median >= spec.fps * 0.99;
    } else if (targets) {
      const target = mode === 'raw' ? targets.raw : targets.jpeg;
      row.target = `>= ${target} fps`;
      row.met = row.fpsMin.median >= target;
    }
    if (kind === 'throughput' && spec.receivers === 1) {
      const frameBytes = spec.width * spec.height * 3;
      const limited = runs.filter((c) => c.loopbackBytesPerSecond);
      if (mode === 'raw' && limited.length) {
        row.loopbackShare = stat(limited.map((c) => loopbackShareOf(c)!));
        row.loopbackFps = stat(limited.map((c) => round(c.loopbackBytesPerSecond! / frameBytes, 0)));
        row.target += `; >= ${LOOPBACK_SHARE_TARGET} of loopback in every run`;
        row.met = (row.met ?? true) && row.loopbackShare.min >= LOOPBACK_SHARE_TARGET && limited.length === runs.length;
      }
      const previous = PREVIOUS_JPEG_FPS[size];
      if (mode === 'jpeg' && previous) {
        row.previousRatio = stat(runs.map((c) => round(Math.min(...c.receivers.map((r) => r.decodedFps)) / previous, 3)));
        row.target += `; within ${PREVIOUS_JPEG_TOLERANCE * 100} % of ${previous} (last bench)`;
        row.met = (row.met ?? true) && row.previousRatio.median >= 1 - PREVIOUS_JPEG_TOLERANCE;
      }
    }
    if (mode === 'raw' && spec.receivers === 1 && kind === 'throughput') {
      const theirs = tutorials.filter((t) => sizeOf(t) === size);
      if (theirs.length) {
        row.tutorialFps = stat(theirs.map((t) => t.fps));
        row.tutorialRatio = stat(runs.map((c, i) => round(c.receivers[0]!.decodedFps / (theirs[i] ?? theirs[0]!).fps, 1)));
      }
    }
    rows.push(row);
  }
  return rows;
}

/** Slowest receiver / the single receiver of the same cell in the same run (same repeat index). */
function fanOutRatios(cells: CellResult[], runs: CellResult[], spec: CellSpec): Stat {
  const singles = cells.filter((c) => c.spec.receivers === 1 && key({ ...c.spec, receivers: spec.receivers }) === key(spec));
  return stat(
    runs.map((c, i) => {
      const single = singles[i] ?? singles[0];
      const singleFps = single ? Math.min(...single.receivers.map((r) => r.decodedFps)) : NaN;
      return round(Math.min(...c.receivers.map((r) => r.decodedFps)) / singleFps, 3);
    }),
  );
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** "512" or "512 (498-530)" when the runs differ. */
export function showStat(s: Stat | undefined, digits = 0, unit = ''): string {
  if (!s || Number.isNaN(s.median)) return '-';
  const f = (x: number) => x.toFixed(digits);
  if (s.values.length < 2 || f(s.min) === f(s.max)) return `${f(s.median)}${unit}`;
  return `${f(s.median)}${unit} (${f(s.min)}-${f(s.max)})`;
}

const COLUMNS = [
  'resolution',
  'mode',
  'receivers',
  'our fps',
  'MB/s',
  'p50/p99 ms',
  'sender CPU %',
  'receiver CPU %',
  'others CPU %',
  'sender/receiver peak RSS MB',
  'of loopback (iperf3)',
  'tutorial fps',
  'ratio',
  'target',
  'met?',
] as const;

function cellsOf(row: Row): string[] {
  const fps =
    row.receivers > 1
      ? `min ${showStat(row.fpsMin)} / mean ${showStat(row.fpsMean)} (min/single ${showStat(row.fanOutRatio, 2)})`
      : showStat(row.fpsMin);
  const received = row.mode === 'jpeg' && Math.abs(row.receivedFps.median - row.fpsMean.median) > 0.5 ? `; received ${showStat(row.receivedFps)}` : '';
  const mode = row.mode === 'jpeg' ? `jpeg q${row.quality}` : 'raw';
  return [
    row.size,
    row.kind === 'throughput' ? mode : `${mode} @ ${row.pacedFps} fps`,
    String(row.receivers),
    fps + received,
    showStat(row.MBps, 1),
    `${showStat(row.p50, 1)} / ${showStat(row.p99, 1)}`,
    showStat(row.senderCpu),
    row.receivers > 1 ? `${showStat(row.receiverCpu)} each` : showStat(row.receiverCpu),
    showStat(row.othersCpu),
    `${showStat(row.senderRssMB)} / ${showStat(row.receiverRssMB)}`,
    row.loopbackShare ? `${showStat(row.loopbackShare, 2)} of ${showStat(row.loopbackFps)} fps` : row.previousRatio ? `- (vs last: ${showStat(row.previousRatio, 2)})` : '-',
    showStat(row.tutorialFps, 1),
    row.tutorialRatio ? `${showStat(row.tutorialRatio, 1)}x` : '-',
    row.target || '-',
    row.met === null ? '-' : row.met ? 'yes' : 'NO',
  ];
}

export function markdownTable(rows: Row[]): string {
  const lines = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${cellsOf(row).join(' | ')} |`);
  return lines.join('\n');
}

/** The same table, aligned for a terminal. */
export function textTable(rows: Row[]): string {
  const table = [[...COLUMNS], ...rows.map(cellsOf)];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  return table.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A bar chart of decoded fps per resolution, one receiver: ours raw, ours JPEG, the tutorial's
 * raw, with the raw and JPEG targets as dashed lines over their bars. Log scale, so the
 * tutorial's single-digit figures stay visible next to ours; every bar carries its value.
 */
export function fpsChart(rows: Row[], title: string): string {
  const sizes = [...new Set(rows.filter((r) => r.kind === 'throughput').map((r) => r.size))];
  const series = [
    { label: 'camstream raw', colour: '#1f77b4', pick: (s: string) => find(rows, s, 'raw')?.fpsMin.median },
    { label: 'camstream JPEG q80 (decoded)', colour: '#2ca02c', pick: (s: string) => find(rows, s, 'jpeg')?.fpsMin.median },
    { label: 'tutorial raw (Python, pickle)', colour: '#d62728', pick: (s: string) => find(rows, s, 'raw')?.tutorialFps?.median },
  ];
  const width = 860;
  const height = 460;
  const left = 70;
  const right = 20;
  const top = 60;
  const bottom = 80;
  const plotH = height - top - bottom;
  const plotW = width - left - right;
  const maxValue = Math.max(10, ...sizes.flatMap((s) => series.map((x) => x.pick(s) ?? 0)), ...sizes.map((s) => FPS_TARGETS[s]?.raw ?? 0));
  const decades = Math.ceil(Math.log10(maxValue * 1.2));
  const y = (v: number) => top + plotH - (Math.log10(Math.max(1, v)) / decades) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">decoded frames per second at one receiver (log scale); dashed lines: the targets for raw (blue) and JPEG (green)</text>`);
  for (let d = 0; d <= decades; d++) {
    for (const m of d < decades ? [1, 2, 5] : [1]) {
      const v = m * 10 ** d;
      const yy = y(v).toFixed(1);
      out.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#555">${v}</text>`);
    }
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  const groupW = plotW / Math.max(1, sizes.length);
  const barW = Math.min(60, (groupW * 0.75) / series.length);
  sizes.forEach((size, g) => {
    const x0 = left + g * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, i) => {
      const value = s.pick(size);
      const x = x0 + i * barW;
      if (value === undefined || Number.isNaN(value)) return;
      const yy = y(value);
      out.push(`<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${s.colour}"/>`);
      // The value above the bar; above the target line instead when that line is just above the bar.
      const target = i === 0 ? FPS_TARGETS[size]?.raw : i === 1 ? FPS_TARGETS[size]?.jpeg : undefined;
      const targetY = target === undefined ? Infinity : y(target);
      const labelY = targetY < yy && yy - targetY < 16 ? targetY : yy;
      const label = value >= 100 ? Math.round(value) : value.toFixed(1);
      out.push(`<text x="${(x + (barW - 4) / 2).toFixed(1)}" y="${(labelY - 5).toFixed(1)}" text-anchor="middle" font-weight="bold">${label}</text>`);
    });
    const targets = FPS_TARGETS[size];
    if (targets) {
      for (const [i, value, colour] of [[0, targets.raw, '#1f77b4'], [1, targets.jpeg, '#2ca02c']] as const) {
        const x = x0 + i * barW;
        const yy = y(value).toFixed(1);
        out.push(`<line x1="${(x - 6).toFixed(1)}" x2="${(x + barW + 2).toFixed(1)}" y1="${yy}" y2="${yy}" stroke="black" stroke-width="4" stroke-opacity="0.25"/>`);
        out.push(`<line x1="${(x - 6).toFixed(1)}" x2="${(x + barW + 2).toFixed(1)}" y1="${yy}" y2="${yy}" stroke="${colour}" stroke-width="2" stroke-dasharray="6,3"/>`);
      }
    }
    const cx = (left + g * groupW + groupW / 2).toFixed(1);
    out.push(`<text x="${cx}" y="${top + plotH + 18}" text-anchor="middle" font-weight="bold">${size}</text>`);
    if (targets) out.push(`<text x="${cx}" y="${top + plotH + 33}" text-anchor="middle" font-size="11" fill="#555">targets: raw ${targets.raw}, JPEG ${targets.jpeg}</text>`);
  });
  series.forEach((s, i) => {
    const x = left + i * 260;
    out.push(`<rect x="${x}" y="${height - 30}" width="14" height="14" fill="${s.colour}"/>`);
    out.push(`<text x="${x + 20}" y="${height - 18}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function find(rows: Row[], size: string, mode: 'raw' | 'jpeg'): Row | undefined {
  return rows.find((r) => r.kind === 'throughput' && r.size === size && r.mode === mode && r.receivers === 1);
}
