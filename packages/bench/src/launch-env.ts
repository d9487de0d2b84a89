/**
 * Environment the bench gives the sender and receiver drivers: the launch settings the apps
 * should be started with too (README.md has the figures behind each; `--no-tuning` leaves them
 * out, to see what they are worth).
 *
 * --max-semi-space-size=32 (MB; Node 20's default is 16): every decoded JPEG frame is a new
 * Buffer of width x height x 3 bytes. With the default young generation those Buffers push V8
 * into a full mark-compact of the whole heap every ~12 frames at 1280x720, and each one holds
 * up a decode by 10-20 ms: p99 latency at 30 fps was 27-32 ms, 13-18 ms with this setting.
 * Costs about 10 % of raw-frame throughput with one receiver (still well above the targets).
 */
export const LAUNCH_ENV: Record<string, string> = {
  NODE_OPTIONS: '--max-semi-space-size=32',
};

/** LAUNCH_ENV on top of `base`, NODE_OPTIONS appended to any the caller already has. */
export function launchEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...extra };
  const inherited = base['NODE_OPTIONS'];
  if (env['NODE_OPTIONS'] !== undefined && inherited) env['NODE_OPTIONS'] = `${inherited} ${env['NODE_OPTIONS']}`;
  return env;
}
