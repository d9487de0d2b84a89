import type { PrometheusText } from './prometheus-text';

const startedAtSeconds = (performance.timeOrigin) / 1000;

/** The process figures Prometheus clients conventionally export: CPU seconds, resident memory, start time. */
export function addProcessMetrics(text: PrometheusText): PrometheusText {
  const cpu = process.cpuUsage();
  return text
    .counter('process_cpu_user_seconds_total', 'User CPU time spent by this process, in seconds.', cpu.user / 1e6)
    .counter('process_cpu_system_seconds_total', 'System CPU time spent by this process, in seconds.', cpu.system / 1e6)
    .counter('process_cpu_seconds_total', 'Total user and system CPU time spent by this process, in seconds.', (cpu.user + cpu.system) / 1e6)
    .gauge('process_resident_memory_bytes', 'Resident memory size of this process, in bytes.', process.memoryUsage.rss())
    .gauge('process_start_time_seconds', 'Start time of this process since the Unix epoch, in seconds.', Math.round(startedAtSeconds * 1000) / 1000);
}
