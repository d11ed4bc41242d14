import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on a module that may be TypeScript. A built tree runs `.js` directly; a source
 * checkout runs `.ts`, and since Node 20 does not pass the main thread's module hooks (tsx) to workers,
 * the worker registers tsx itself before importing the module.
 */
export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** The sibling module of `from` named `name`, with the extension `from` has (`.ts` in source, `.js` built). */
export function siblingModule(from: string, name: string): URL {
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, from);
}
