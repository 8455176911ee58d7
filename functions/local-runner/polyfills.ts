/**
 * aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22+); the CLI, demo and tests run on Node 20.
 * Imported first by the local runner; a no-op where the method exists.
 */
const PromiseConstructor = Promise as PromiseConstructor & { withResolvers?: unknown };

if (typeof PromiseConstructor.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(this: PromiseConstructor) {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new this<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
