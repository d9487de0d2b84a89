/** "5.1 Mbit/s" (three digits from 100 on) from bytes per second; a link too fast to measure says so. */
export function formatMbps(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond)) return 'too fast to measure';
  const mbps = (bytesPerSecond * 8) / 1e6;
  return `${mbps >= 100 ? mbps.toFixed(0) : mbps.toFixed(1)} Mbit/s`;
}

/** "45 KB", "12 MB". */
export function formatBytes(bytes: number): string {
  return bytes >= 10 * 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(0)} MB` : `${Math.round(bytes / 1024)} KB`;
}
