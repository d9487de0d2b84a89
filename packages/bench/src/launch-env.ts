/**
 * Environment for the sender and receiver drivers. They run with Node's defaults, as the apps
 * do: `--max-semi-space-size=32` once lowered the p99 latency while every frame was a fresh
 * Buffer, and no longer helps now that frame buffers are reused (README.md).
 */

/** `extra` over the inherited environment, NODE_OPTIONS appended to any the caller already has. */
export function launchEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...extra };
  const inherited = base['NODE_OPTIONS'];
  if (env['NODE_OPTIONS'] !== undefined && inherited) env['NODE_OPTIONS'] = `${inherited} ${env['NODE_OPTIONS']}`;
  return env;
}
