/**
 * Binary frames carry bulk data for one request: [u16 BE id length][id UTF-8][bytes].
 * JSON frames carry everything else (schema/protocol/messages.json).
 */
export function encodeBinary(id: string, data: Buffer): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const header = Buffer.allocUnsafe(2);
  header.writeUInt16BE(idBytes.length, 0);
  return Buffer.concat([header, idBytes, data]);
}

export function decodeBinary(frame: Buffer): { id: string; data: Buffer } | null {
  if (frame.length < 2) return null;
  const idLength = frame.readUInt16BE(0);
  if (idLength === 0 || frame.length < 2 + idLength) return null;
  return { id: frame.subarray(2, 2 + idLength).toString('utf8'), data: frame.subarray(2 + idLength) };
}

/**
 * The smallest frame limit (`serve --max-message-bytes`) every JSON request
 * fits in: the largest the schema bounds, a sync with a full referenceMap,
 * preserve and allowSourceReferences, is about 600 KB of JSON, 3.5 MB with
 * every character escaped. A write's binary frame needs its length plus the id.
 */
export const MIN_MESSAGE_BYTES = 4 * 1024 * 1024;
