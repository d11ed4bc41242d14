import os from 'node:os';

/** The machine a run measured; figures compare only between runs on the same one. */
export interface Machine {
  cpuModel: string;
  /** Logical CPUs the OS reports (`os.cpus()`). */
  cores: number;
  /** CPUs this process may actually use (cgroup/affinity limits), which can be fewer. */
  availableParallelism: number;
  memoryGiB: number;
  node: string;
  platform: string;
}

/** Describes this machine. */
export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  };
}

/** One line: "AMD EPYC, 2 cores, 23.5 GiB RAM, Node v20.20.2 (linux x64)". */
export function machineLine(m: Machine): string {
  const usable = m.availableParallelism < m.cores ? ` (${m.availableParallelism} usable)` : '';
  return `${m.cpuModel}, ${m.cores} cores${usable}, ${m.memoryGiB} GiB RAM, Node ${m.node} (${m.platform})`;
}
