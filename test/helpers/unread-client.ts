/**
 * A real `ws` client of the agent that can stop reading its socket: the
 * replies it is sent pile up in the kernel, then wherever the agent keeps
 * them. It counts the replies it gets and keeps the first binary frames.
 */
import WebSocket from 'ws';

export interface UnreadClient {
  ws: WebSocket;
  /** Every reply to a request other than hello, in arrival order. */
  replies: Array<{ id: string; ok: boolean; result?: { length: number } }>;
  /** The first `keepFrames` binary frames (the rest only counted). */
  frames: Buffer[];
  frameCount(): number;
  /** Stops (true) or resumes (false) reading the socket. */
  pauseReading(paused: boolean): void;
  /** Sends a read request without waiting for its reply. */
  read(id: string, container: string, offset: number, length: number): void;
}

/** Connects with `token`, says hello, and returns the client reading (pause it next). */
export async function unreadClient(url: string, token: string, keepFrames = 3): Promise<UnreadClient> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const client: UnreadClient & { count: number } = {
    ws,
    replies: [],
    frames: [],
    count: 0,
    frameCount: () => client.count,
    pauseReading: (paused) => {
      const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      if (paused) socket.pause();
      else socket.resume();
    },
    read: (id, container, offset, length) =>
      ws.send(JSON.stringify({ v: 1, id, op: 'read', params: { container, offset, length } })),
  };
  let hello: () => void;
  const helloDone = new Promise<void>((resolve) => {
    hello = resolve;
  });
  ws.on('message', (d, isBinary) => {
    if (isBinary) {
      client.count++;
      if (client.frames.length < keepFrames) client.frames.push(d as Buffer);
      return;
    }
    const reply = JSON.parse(String(d));
    if (reply.id === 'hello') hello();
    else client.replies.push(reply);
  });
  ws.send(JSON.stringify({ v: 1, id: 'hello', op: 'hello', params: { protocols: [1] } }));
  await helloDone;
  return client;
}

/** A read reply frame's data (framing.ts: a 2-byte id length, the id, then the data). */
export function frameData(frame: Buffer): Buffer {
  return frame.subarray(2 + frame.readUInt16BE(0));
}
