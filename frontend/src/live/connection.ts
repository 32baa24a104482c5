/**
 * Main-thread side of the socket worker: starts it, tells it which session to show (live, or
 * replayed by the server's clock), forwards replay controls, and dispatches what it posts —
 * data and replay ticks into the ring buffers (no React), low-rate metadata, the replay clock
 * and connection state into the UI store.
 */

import { DASHBOARD_CHANNELS, telemetry } from "../data/streams";
import { debug, logTick } from "../debug";
import { useUi, type Connection } from "../state/ui";
import { addWork } from "../ui/loop";
import type { FromWorker, ReplayControl, ReplayStart, SocketState, ToWorker, WorkerPost } from "./bridge";

let worker: Worker | null = null;
/** Numbers each connect, replay and disconnect (see bridge.ts ToWorker). */
let generation = 0;
let socketState: SocketState = "connecting";
let lagging = false;

function send(msg: ToWorker): void {
  worker ??= startWorker();
  worker.postMessage(msg);
}

function startWorker(): Worker {
  const w = new Worker(new URL("../worker.ts", import.meta.url), { type: "module", name: "pitwire-socket" });
  w.onmessage = (ev: MessageEvent<WorkerPost>) => {
    // Posted for a connection the page has left (before the worker saw the switch): drop.
    if (ev.data.gen !== generation) return;
    const started = performance.now();
    handle(ev.data.msg);
    addWork(performance.now() - started);
  };
  w.onerror = (ev) => {
    console.error("pitwire socket worker failed", ev.message);
    useUi.getState().setConnection("disconnected", `worker error: ${ev.message}`);
  };
  return w;
}

/** The newest replay epoch shown: ticks of older epochs never reach the rings. */
let shownEpoch = 0;

/** Called with the epoch and clock instant [s since epoch] when a replay jumps (a new epoch). */
export type JumpListener = (epoch: number, t: number) => void;
const jumpListeners = new Set<JumpListener>();

/** Be told of every replay jump (seek, step, a reopened replay); returns the unsubscribe. */
export function onReplayJump(listener: JumpListener): () => void {
  jumpListeners.add(listener);
  return () => jumpListeners.delete(listener);
}

/** The epoch of the replay position shown (0 before the first tick). */
export function replayEpoch(): number {
  return shownEpoch;
}

/** Show `session` live: drops the old session's data and (re)connects the worker. */
export function connectSession(session: string): void {
  reset("live");
  send({ type: "connect", gen: generation, session, channels: [...DASHBOARD_CHANNELS] });
}

/** Replay `session` by the server's clock from `start`. */
export function connectReplay(session: string, start: ReplayStart): void {
  reset("replay");
  send({ type: "replay", gen: generation, session, channels: [...DASHBOARD_CHANNELS], start });
}

/** Play, pause, seek, change speed or step the replay. */
export function sendControl(control: ReplayControl): void {
  debug.controlsSent++;
  send({ type: "control", control });
}

function reset(mode: "live" | "replay"): void {
  generation++;
  telemetry.drop();
  lagging = false;
  shownEpoch = 0;
  useUi.getState().setMode(mode);
}

export function disconnectSession(): void {
  if (worker !== null) send({ type: "disconnect", gen: ++generation });
}

function handle(msg: FromWorker): void {
  const ui = useUi.getState();
  switch (msg.type) {
    case "data":
      for (const batch of msg.batches) {
        debug.messagesReceived++;
        debug.framesReceived += telemetry.append(batch);
      }
      break;
    case "ticks":
      debug.staleFrames += msg.stale;
      for (const tick of msg.ticks) {
        if (tick.epoch < shownEpoch) {
          debug.staleFrames++;
          continue;
        }
        const jumped = tick.epoch > shownEpoch;
        if (jumped) {
          // A seek or step: the view jumps; nothing of the old position stays drawn.
          shownEpoch = tick.epoch;
          telemetry.clear();
        }
        debug.replayTicks++;
        debug.replayT = tick.t;
        debug.replayEpoch = tick.epoch;
        logTick(tick.epoch, tick.t);
        for (const car of tick.cars) telemetry.appendRow(car.stream, tick.t, car.names, car.values);
        if (jumped) for (const listener of jumpListeners) listener(tick.epoch, tick.t);
      }
      break;
    case "clock":
      debug.clocks++;
      useUi.getState().setClock({ ...msg.clock, receivedAt: performance.now() });
      break;
    case "advertise":
      ui.setAdvertised(msg.track, msg.streams);
      break;
    case "state":
      socketState = msg.state;
      // A (re)opened socket starts a new replay on the server, whose epochs count from 1.
      if (msg.state === "open") shownEpoch = 0;
      if (msg.state !== "open") lagging = false;
      ui.setConnection(indicator(), stateDetail(msg.state, msg.detail, msg.retryIn));
      break;
    case "status":
      if (msg.code === "lagging") lagging = true;
      else if (msg.code === "recovered") lagging = false;
      if (msg.level !== "info") console.warn(`pitwire ${msg.level}: ${msg.code}: ${msg.message}`);
      notice(msg.level, msg.code, msg.message);
      ui.setConnection(indicator(), msg.code === "lagging" || msg.code === "recovered" ? msg.message : ui.connectionDetail);
      break;
    default: {
      const unreachable: never = msg;
      throw new Error(`unhandled worker message ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Problems the server or the worker reports (a refused replay or control, the store down)
 * are shown to the user until dismissed or resolved; lagging has its own indicator. */
function notice(level: "info" | "warning" | "error", code: string, message: string): void {
  const ui = useUi.getState();
  if (level !== "info" && code !== "lagging") ui.setNotice({ level, code, message });
  else if (RESOLVES[code] !== undefined && ui.notice?.code === RESOLVES[code]) ui.setNotice(null);
}

/** An info status that ends the problem a notice shows. */
const RESOLVES: Record<string, string> = { store_available: "store_unavailable" };

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
