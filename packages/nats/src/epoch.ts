import { randomBytes } from 'node:crypto';

/*
 * An epoch names one run of a sender (one publisher start): its sequence numbers start afresh.
 * It is the start time in milliseconds since the Unix epoch, '-', and 16 random hex digits,
 * e.g. `1764493200123-9f86d081884c7d65`, so that epochs order by start time and two runs
 * never share a name.
 */

const EPOCH = /^(\d{1,15})-([0-9a-f]{16})$/;

export interface ParsedEpoch {
  /** When the run started, ms since the Unix epoch (the sender's clock). */
  startMs: number;
  /** The random part. */
  id: string;
}

export function newEpoch(nowMs = Date.now()): string {
  return `${Math.floor(nowMs)}-${randomBytes(8).toString('hex')}`;
}

/** The parts of a valid epoch, or undefined. */
export function parseEpoch(text: string | undefined): ParsedEpoch | undefined {
  const match = text === undefined ? null : EPOCH.exec(text);
  if (!match) return undefined;
  return { startMs: Number(match[1]), id: match[2]! };
}

/** Negative if `a` started before `b`, positive if after, 0 if they are the same epoch (ties broken by the random part). */
export function compareEpochs(a: ParsedEpoch, b: ParsedEpoch): number {
  if (a.startMs !== b.startMs) return a.startMs - b.startMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
