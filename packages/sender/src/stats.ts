import type { StreamServer } from './stream-server';

/** Once a second: frames sent, bitrate, encode time and what each viewer dropped. */
export class SenderStats {
  private frames = 0;
  private bytes = 0;
  private encodeMs = 0;
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();

  constructor(
    private readonly server: StreamServer,
    private readonly format: 'text' | 'json',
    quiet: boolean,
  ) {
    this.timer = setInterval(() => this.print(), 1000);
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

  private print(): void {
    const now = performance.now();
    const seconds = (now - this.last) / 1000;
    this.last = now;
    const viewers = this.server.viewerList;
    const figures = {
      fps: round(this.frames / seconds, 1),
      mbps: round((this.bytes * 8) / seconds / 1e6, 2),
      encodeMs: this.frames ? round(this.encodeMs / this.frames, 2) : 0,
      viewers: viewers.length,
      dropped: Object.fromEntries(viewers.map((v) => [v.name, v.dropped])),
    };
    this.frames = this.bytes = this.encodeMs = 0;
    if (this.format === 'json') {
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...figures })}\n`);
    } else {
      const drops = viewers.reduce((sum, v) => sum + v.dropped, 0);
      process.stdout.write(
        `sending ${figures.fps.toFixed(1)} fps, ${figures.mbps.toFixed(2)} Mbit/s per viewer, encode ${figures.encodeMs.toFixed(2)} ms, ${figures.viewers} viewer(s), ${drops} dropped\n`,
      );
    }
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
