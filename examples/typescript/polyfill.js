// @restatedev/restate-sdk 1.17.2 calls Promise.withResolvers (Node 22+); Node 20 lacks it.
// Loaded before the app by ts-node's "require" (tsconfig.json) or `node --require ./polyfill.js`.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
