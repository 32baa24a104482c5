/**
 * Main-thread side of the socket worker: starts it, tells it which session to show, and
 * dispatches what it posts — data into the ring buffers (no React), low-rate metadata and
 * connection state into the UI store.
 */

import { telemetry } from "../data/streams";
import { debug } from "../debug";
import { useUi, type Connection } from "../state/ui";
import type { FromWorker, SocketState, ToWorker } from "./bridge";

let worker: Worker | null = null;
let socketState: SocketState = "connecting";
let lagging = false;

function send(msg: ToWorker): void {
  worker ??= startWorker();
  worker.postMessage(msg);
}

function startWorker(): Worker {
  const w = new Worker(new URL("../worker.ts", import.meta.url), { type: "module", name: "pitwire-socket" });
  w.onmessage = (ev: MessageEvent<FromWorker>) => handle(ev.data);
  w.onerror = (ev) => {
    console.error("pitwire socket worker failed", ev.message);
    useUi.getState().setConnection("disconnected", `worker error: ${ev.message}`);
  };
  return w;
}

/** Show `session`: drops the old session's data and (re)connects the worker. */
export function connectSession(session: string): void {
  telemetry.clear();
  lagging = false;
  send({ type: "connect", session });
}

export function disconnectSession(): void {
  if (worker !== null) send({ type: "disconnect" });
}

function handle(msg: FromWorker): void {
  const ui = useUi.getState();
  switch (msg.type) {
    case "data":
      debug.messagesReceived++;
      debug.framesReceived += telemetry.append(msg);
      break;
    case "advertise":
      ui.setAdvertised(msg.track, msg.streams);
      break;
    case "state":
      socketState = msg.state;
      if (msg.state !== "open") lagging = false;
      ui.setConnection(indicator(), stateDetail(msg.state, msg.detail, msg.retryIn));
      break;
    case "status":
      if (msg.code === "lagging") lagging = true;
      else if (msg.code === "recovered") lagging = false;
      if (msg.level !== "info") console.warn(`pitwire ${msg.level}: ${msg.code}: ${msg.message}`);
      ui.setConnection(indicator(), msg.code === "lagging" || msg.code === "recovered" ? msg.message : ui.connectionDetail);
      break;
    default: {
      const unreachable: never = msg;
      throw new Error(`unhandled worker message ${JSON.stringify(unreachable)}`);
    }
  }
}

function indicator(): Connection {
  switch (socketState) {
    case "connecting":
      return "connecting";
    case "open":
      return lagging ? "lagging" : "live";
    case "closed":
    case "error":
      return "disconnected";
  }
}

function stateDetail(state: SocketState, detail: string, retryIn: number): string {
  const retry = retryIn > 0 ? `; retrying in ${retryIn.toFixed(1)} s` : "";
  return `${state}${detail ? ` (${detail})` : ""}${retry}`;
}
