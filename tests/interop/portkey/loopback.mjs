// Preloaded with `node --import`: the gateway's server listens on 127.0.0.1 only.
// (The gateway takes --port but no host and would otherwise listen on every interface.)
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    return listen.call(this, { port: Number(args[0]), host: "127.0.0.1" }, ...args.slice(1).filter((a) => typeof a === "function"));
  }
  if (args[0] && typeof args[0] === "object" && !("path" in args[0])) {
    return listen.call(this, { ...args[0], host: "127.0.0.1" }, ...args.slice(1));
  }
  return listen.apply(this, args);
};
