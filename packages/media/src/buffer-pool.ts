/**
 * Reuses the pixel buffers of frames (captured or decoded). A fresh 1080p Buffer per frame costs
 * the main thread about 2 ms (allocation, page faults), and at 720p 30 fps the external memory
 * makes V8 run a full mark-compact about twice a second, each pausing the event loop 5-15 ms; a
 * reused buffer costs nothing. Holds buffers of one size only: a new size drops the old ones.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly capacity: number) {}

  take(bytes: number): Buffer {
    if (bytes !== this.bytes) {
      this.free.length = 0;
      this.bytes = bytes;
    }
    return this.free.pop() ?? Buffer.allocUnsafe(bytes);
  }

  /** Hands a buffer back once nothing reads it any more. */
  give(buffer: Buffer): void {
    if (buffer.length !== this.bytes || this.free.length >= this.capacity || this.free.includes(buffer)) return;
    this.free.push(buffer);
  }

  get available(): number {
    return this.free.length;
  }
}
