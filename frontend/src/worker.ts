/**
 * The socket worker: owns the WebSocket to `/ws/{session}?format=bin` (subprotocol
 * `pitwire.v1`), feeds a ViewerPeer and posts its events to the main thread. Data frames go
 * out as typed-array views with the received ArrayBuffer transferred (zero copy, no JSON).
 * Reconnects with backoff when the socket closes, except after close code 4003 (unsupported
 * protocol version), which retrying cannot fix.
 */

import { backoff, socketUrl, type FromWorker, type SocketState, type ToWorker } from "./live/bridge";
import { SUBPROTOCOL } from "./protocol/messages";
import { ViewerPeer } from "./protocol/viewer";

/** The parts of DedicatedWorkerGlobalScope used here (the DOM lib has no worker types). */
interface WorkerScope {
  readonly location: { readonly origin: string };
  postMessage(message: FromWorker, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}

const scope = self as unknown as WorkerScope;
const MAX_RATE_HZ = 30;
const CLOSE_UNSUPPORTED = 4003;

let session: string | null = null;
let socket: WebSocket | null = null;
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;

function post(message: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

function postState(state: SocketState, detail = "", retryIn = 0): void {
  post({ type: "state", state, detail, retryIn });
}

function connect(): void {
  clearTimeout(retryTimer);
  if (session === null) return;
  postState("connecting", `attempt ${attempt + 1}`);
  let ws: WebSocket;
  try {
    ws = new WebSocket(socketUrl(scope.location.origin, session), SUBPROTOCOL);
  } catch (err) {
    retry("error", (err as Error).message);
    return;
  }
  ws.binaryType = "arraybuffer";
  const peer = new ViewerPeer({ name: "dashboard", maxRate: MAX_RATE_HZ });
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    postState("open");
    peer.start();
    flush(ws, peer);
  };
  ws.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
    if (socket !== ws) return;
    if (typeof ev.data === "string") peer.receiveText(ev.data);
    else peer.receiveBinary(ev.data);
    flush(ws, peer);
  };
  ws.onerror = () => {
    if (socket === ws) postState("error", "socket error");
  };
  ws.onclose = (ev: CloseEvent) => {
    if (socket !== ws) return;
    socket = null;
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
function flush(ws: WebSocket, peer: ViewerPeer): void {
  for (const text of peer.outgoing()) ws.send(text);
  for (const ev of peer.events()) {
    switch (ev.type) {
      case "serverInfo":
        attempt = 0;
        break;
      case "advertise":
        post({ type: "advertise", session: ev.session, track: ev.track, source: ev.source, streams: ev.streams, channels: ev.channels });
        break;
      case "status":
        post({ type: "status", level: ev.level, code: ev.code, message: ev.message });
        break;
      case "data":
        // Every view shares the message's buffer: transfer it once, the views come along.
        post(
          { type: "data", stream: ev.stream, epoch: ev.epoch, t0: ev.t0, tOffsets: ev.tOffsets, columns: ev.columns },
          [ev.tOffsets.buffer as ArrayBuffer],
        );
        break;
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
  const ws = socket;
  socket = null;
  ws?.close(1000, "viewer left");
}

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case "connect":
      disconnect();
      session = msg.session;
      attempt = 0;
      connect();
      break;
    case "disconnect":
      disconnect();
      session = null;
      postState("closed", "disconnected by the page");
      break;
    default: {
      const unreachable: never = msg;
      throw new Error(`unhandled worker command ${JSON.stringify(unreachable)}`);
    }
  }
};
