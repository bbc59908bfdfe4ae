/**
 * Closes an authenticated WebSocket client that has gone silent: the agent
 * pings every half idle time, and a client from which nothing arrived (no
 * request, no pong) for the idle time is closed. A client library that
 * answers pings (ws, browsers) stays connected however long it makes no
 * request; a dead peer or a socket held open on purpose does not. A client
 * the agent still owes answers, or whose replies it still holds (`busy`), is
 * not idle: the pings wait behind those replies, and its pongs unread while
 * the connection is at its byte bound (connection-bytes.ts).
 */
import type { WebSocket } from 'ws';

export function watchIdle(
  ws: WebSocket,
  idleMs: number,
  onIdle: () => void,
  busy: () => boolean = () => false,
): void {
  let last = Date.now();
  const heard = () => {
    last = Date.now();
  };
  ws.on('message', heard);
  ws.on('pong', heard);
  const timer = setInterval(
    () => {
      if (busy()) heard();
      if (Date.now() - last >= idleMs) {
        clearInterval(timer);
        onIdle();
      } else if (ws.readyState === ws.OPEN) ws.ping();
    },
    Math.max(10, Math.floor(idleMs / 2)),
  );
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}
