// Preloaded with `node --import` into a benchmarked child process: when the process exits,
// writes the CPU time it used (all threads, since the process started) as JSON
// `{ "userUs": n, "systemUs": n }`, in microseconds, to the file named by
// PATCHBAY_BENCH_CPU_FILE. Without that variable it does nothing.
import { writeFileSync } from 'node:fs';

const cpuFile = process.env.PATCHBAY_BENCH_CPU_FILE;

if (cpuFile) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    writeFileSync(cpuFile, JSON.stringify({ userUs: user, systemUs: system }));
  });
}
