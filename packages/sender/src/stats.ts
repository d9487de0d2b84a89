import type { StreamServer } from './stream-server';

/**
 * Once a second while someone watches: frames sent, bitrate, encode time and the frames dropped
 * for slow viewers. While nobody watches it says so once, then nothing until someone joins.
 */
export class SenderStats {
  private frames = 0;
  private bytes = 0;
  private encodeMs = 0;
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();
  /** Whether the last report was that nobody watches. */
  private saidIdle = false;

  constructor(
    private readonly server: Pick<StreamServer, 'viewerList'>,
    private readonly format: 'text' | 'json',
    quiet: boolean,
    private readonly write: (line: string) => void = (line) => void process.stdout.write(line),
  ) {
    this.timer = setInterval(() => this.report(), 1000);
    this.timer.unref();
    if (quiet) clearInterval(this.timer);
  }

  frameSent(encodeMs: number, payloadBytes: number): void {
    this.frames++;
    this.bytes += payloadBytes;
    this.encodeMs += encodeMs;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Prints the figures since the last report (the timer calls it once a second). */
  report(): void {
    const now = performance.now();
    const seconds = (now - this.last) / 1000;
    this.last = now;
    const viewers = this.server.viewerList;
    const idle = viewers.length === 0 && this.frames === 0;
    if (idle && this.saidIdle) return;
    this.saidIdle = idle;
    const figures = {
      fps: round(this.frames / seconds, 1),
      mbps: round((this.bytes * 8) / seconds / 1e6, 2),
      encodeMs: this.frames ? round(this.encodeMs / this.frames, 2) : 0,
      viewers: viewers.length,
      dropped: Object.fromEntries(viewers.map((v) => [v.name, v.dropped])),
    };
    this.frames = this.bytes = this.encodeMs = 0;
    if (this.format === 'json') {
      this.write(`${JSON.stringify({ time: new Date().toISOString(), ...figures })}\n`);
    } else if (idle) {
      this.write('waiting for receivers\n');
    } else {
      const drops = viewers.reduce((sum, v) => sum + v.dropped, 0);
      this.write(
        `sending ${figures.fps.toFixed(1)} fps, ${figures.mbps.toFixed(2)} Mbit/s per viewer, encode ${figures.encodeMs.toFixed(2)} ms, ${figures.viewers} viewer(s), ${drops} frames dropped\n`,
      );
    }
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
