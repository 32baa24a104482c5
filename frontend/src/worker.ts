/**
 * The socket worker: owns the WebSocket to `/ws/{session}?format=bin` (subprotocol
 * `pitwire.v1`), feeds a ViewerPeer and posts its events to the main thread.
 *
 * - Live: subscribes to every car; data frames go out as typed-array views whose received
 *   ArrayBuffer is transferred (zero copy, no JSON).
 * - Replay: opens the server's replay clock; STATE frames are decoded here and each tick's
 *   values go out as Float64Arrays (transferred); `control` messages from the page are sent on.
 *
 * Everything that arrives within FLUSH_MS is posted as one message, so 20 cars cost the main
 * thread a few tasks per frame, not one per car. Reconnects with backoff when the socket
 * closes (a replay reopens where its clock last was), except after close code 4003
 * (unsupported protocol version), which retrying cannot fix.
 */

import { backoff, socketUrl, type DataBatchMsg, type FromWorker, type ReplayStart, type ReplayTickMsg, type SocketState, type ToWorker, type WorkerPost, resumeAt, type LastClock } from "./live/bridge";
import { SUBPROTOCOL } from "./protocol/messages";
import { ViewerPeer, nsToSeconds, type ControlRequest } from "./protocol/viewer";

/** The parts of DedicatedWorkerGlobalScope used here (the DOM lib has no worker types). */
interface WorkerScope {
  readonly location: { readonly origin: string };
  postMessage(message: WorkerPost, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}

const scope = self as unknown as WorkerScope;
const MAX_RATE_HZ = 30;
const REPLAY_FPS = 30;
const FLUSH_MS = 8;
const CLOSE_UNSUPPORTED = 4003;
/** The backoff starts over once a connection has stayed up this long [ms]. */
const HEALTHY_MS = 5000;

interface Target {
  session: string;
  channels: string[];
  /** null = live */
  replay: ReplayStart | null;
}

let target: Target | null = null;
/** The generation of the page's newest connect, replay or disconnect. */
let gen = 0;
let healthyTimer: ReturnType<typeof setTimeout> | undefined;
let socket: WebSocket | null = null;
let peer: ViewerPeer | null = null;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
/** Replay: the last clock (to reopen where it is after a reconnect) and when it came [ms]. */
let lastClock: LastClock | null = null;

let batches: DataBatchMsg[] = [];
let ticks: ReplayTickMsg[] = [];
let transfer: Transferable[] = [];
let stale = 0;
let flushTimer: ReturnType<typeof setTimeout> | undefined;

function post(message: FromWorker, list: Transferable[] = []): void {
  scope.postMessage({ gen, msg: message }, list);
}

function postState(state: SocketState, detail = "", retryIn = 0): void {
  post({ type: "state", state, detail, retryIn });
}

function scheduleFlush(): void {
  flushTimer ??= setTimeout(flushData, FLUSH_MS);
}

function flushData(): void {
  flushTimer = undefined;
  if (batches.length > 0) post({ type: "data", batches }, transfer);
  else if (ticks.length > 0 || stale > 0) post({ type: "ticks", ticks, stale }, transfer);
  batches = [];
  ticks = [];
  transfer = [];
  stale = 0;
}

/** Drop what is queued for the page (a new session or mode). */
function dropQueued(): void {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  batches = [];
  ticks = [];
  transfer = [];
  stale = 0;
}

function replayOptions(start: ReplayStart, channels: string[]) {
  const resume = lastClock;
  return {
    channels,
    fps: REPLAY_FPS,
    speed: resume?.speed ?? start.speed,
    t: resume === null ? start.t : resumeAt(resume, performance.now()),
    paused: resume === null ? start.paused : !resume.playing,
    delay: start.delay,
  };
}

function connect(): void {
  clearTimeout(retryTimer);
  if (target === null) return;
  const t = target;
  postState("connecting", `attempt ${attempt + 1}`);
  let ws: WebSocket;
  try {
    ws = new WebSocket(socketUrl(scope.location.origin, t.session), SUBPROTOCOL);
  } catch (err) {
    retry("error", (err as Error).message);
    return;
  }
  ws.binaryType = "arraybuffer";
  const p = new ViewerPeer({
    name: "dashboard",
    maxRate: MAX_RATE_HZ,
    replay: t.replay === null ? undefined : replayOptions(t.replay, t.channels),
  });
  socket = ws;
  peer = p;
  ws.onopen = () => {
    if (socket !== ws) return;
    clearTimeout(healthyTimer);
    healthyTimer = setTimeout(() => {
      if (socket === ws) attempt = 0;
    }, HEALTHY_MS);
    postState("open");
    p.start();
    flush(ws, p);
  };
  ws.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
    if (socket !== ws) return;
    if (typeof ev.data === "string") p.receiveText(ev.data);
    else p.receiveBinary(ev.data);
    flush(ws, p);
  };
  ws.onerror = () => {
    if (socket === ws) postState("error", "socket error");
  };
  ws.onclose = (ev: CloseEvent) => {
    if (socket !== ws) return;
    clearTimeout(healthyTimer);
    socket = null;
    peer = null;
    const detail = `closed with code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}`;
    if (ev.code === CLOSE_UNSUPPORTED) postState("error", detail);
    else retry("closed", detail);
  };
}

function retry(state: SocketState, detail: string): void {
  const delay = backoff(attempt++);
  postState(state, detail, delay);
  retryTimer = setTimeout(connect, delay * 1000);
}

/** Send what the peer queued and forward its events. */
function flush(ws: WebSocket, p: ViewerPeer): void {
  for (const text of p.outgoing()) ws.send(text);
  if (p.staleFrames > 0) {
    stale += p.staleFrames;
    p.staleFrames = 0;
    scheduleFlush();
  }
  for (const ev of p.events()) {
    switch (ev.type) {
      case "serverInfo":
        break; // the backoff starts over only once the connection has stayed up (HEALTHY_MS)
      case "advertise":
        post({ type: "advertise", session: ev.session, track: ev.track, source: ev.source, streams: ev.streams, channels: ev.channels });
        break;
      case "status":
        post({ type: "status", level: ev.level, code: ev.code, message: ev.message });
        break;
      case "data":
        // Every view shares the message's buffer: transfer it once, the views come along.
        batches.push({ stream: ev.stream, epoch: ev.epoch, t0: ev.t0, tOffsets: ev.tOffsets, columns: ev.columns });
        transfer.push(ev.tOffsets.buffer as ArrayBuffer);
        scheduleFlush();
        break;
      case "tick":
        if (ev.keyframe && ticks.length > 0) flushData(); // a new epoch starts a new message
        ticks.push({ epoch: ev.epoch, keyframe: ev.keyframe, t: nsToSeconds(ev.tNs), cars: ev.cars });
        for (const car of ev.cars) transfer.push(car.values.buffer as ArrayBuffer);
        scheduleFlush();
        break;
      case "clock": {
        const c = ev.clock;
        lastClock = { tNs: c.t, endNs: c.end, speed: c.speed, playing: c.playing, at: performance.now() };
        flushData(); // frames of the old epoch go before the clock that ends it
        post({
          type: "clock",
          clock: {
            epoch: c.epoch,
            t: c.t / 1e9,
            playing: c.playing,
            speed: c.speed,
            start: c.start / 1e9,
            end: c.end / 1e9,
            fps: c.fps,
            delay: c.delay ?? null,
            ended: c.ended ?? false,
          },
        });
        break;
      }
      case "error":
        post({ type: "status", level: "error", code: "client_error", message: ev.message });
        break;
      default: {
        const unreachable: never = ev;
        throw new Error(`unhandled viewer event ${JSON.stringify(unreachable)}`);
      }
    }
  }
}

function disconnect(): void {
  clearTimeout(retryTimer);
  clearTimeout(healthyTimer);
  dropQueued();
  const ws = socket;
  socket = null;
  peer = null;
  ws?.close(1000, "viewer left");
}

function control(request: ControlRequest): void {
  if (socket === null || peer === null || socket.readyState !== WebSocket.OPEN) {
    post({ type: "status", level: "warning", code: "not_connected", message: `cannot ${request.action}: not connected to the server` });
    return;
  }
  peer.control(request);
  flush(socket, peer);
}

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case "connect":
    case "replay":
      disconnect();
      gen = msg.gen;
      target = { session: msg.session, channels: msg.channels, replay: msg.type === "replay" ? msg.start : null };
      lastClock = null;
      attempt = 0;
      connect();
      break;
    case "control":
      control(msg.control);
      break;
    case "disconnect":
      disconnect();
      gen = msg.gen;
      target = null;
      postState("closed", "disconnected by the page");
      break;
    default: {
      const unreachable: never = msg;
      throw new Error(`unhandled worker command ${JSON.stringify(unreachable)}`);
    }
  }
};
