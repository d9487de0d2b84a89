/**
 * Reuses the pixel buffers of decoded frames. A fresh 1080p Buffer per frame costs the main
 * thread about 2 ms (allocation, page faults, and a full GC every half second at 30 fps that
 * the external memory triggers); a reused one costs nothing. Holds buffers of one size only:
 * a new frame size drops the old ones.
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
