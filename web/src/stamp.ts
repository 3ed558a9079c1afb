// The frame stamp (proto/src/stamp.rs): a strip of black and white blocks at the top of test
// pictures carrying the frame number and its capture time (UNIX µs). Read from the decoded
// picture's luma, it times glass-to-glass in the page exactly as moq-sub does.

const BYTES = 15;
const BITS = BYTES * 8;
const STAMP_MAGIC = 0xa5;

export interface Stamp {
  frame: number;
  /** Capture time, µs since the UNIX epoch. */
  captureUs: number;
}

/** Block size and blocks per row for a picture size, or undefined when it cannot carry one. */
export function layout(width: number, height: number): { block: number; perRow: number; rows: number } | undefined {
  const block = width >= 640 ? 16 : 8;
  const perRow = Math.floor(width / block);
  const rows = Math.ceil(BITS / perRow) * block;
  if (perRow < 16 || rows > height) return undefined;
  return { block, perRow, rows };
}

/** CRC-16/CCITT-FALSE, as the writer computes it. */
export function crc16(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The stamp in the top rows of a luma plane, if one is there and its CRC holds. */
export function readStamp(luma: Uint8Array, stride: number, width: number, height: number): Stamp | undefined {
  const at = layout(width, height);
  if (!at || stride < width || luma.length < stride * at.rows) return undefined;
  const { block: b, perRow } = at;
  const bytes = new Uint8Array(BYTES);
  for (let i = 0; i < BITS; i++) {
    const x0 = (i % perRow) * b;
    const y0 = Math.floor(i / perRow) * b;
    // The block's centre half only: its edges carry the most ringing.
    let sum = 0;
    let count = 0;
    for (let row = y0 + b / 4; row < y0 + (3 * b) / 4; row++) {
      for (let x = x0 + b / 4; x < x0 + (3 * b) / 4; x++) {
        sum += luma[row * stride + x];
        count++;
      }
    }
    if (sum / count >= 128) bytes[i >> 3] |= 1 << (7 - (i & 7));
  }
  const view = new DataView(bytes.buffer);
  if (bytes[0] !== STAMP_MAGIC || view.getUint16(13) !== crc16(bytes.subarray(0, 13))) return undefined;
  return { frame: view.getUint32(1), captureUs: Number(view.getBigUint64(5)) };
}

/** The stamp of a decoded VideoFrame (planar YUV formats; others have none to read). */
export async function stampOf(frame: VideoFrame): Promise<Stamp | undefined> {
  if (!frame.format || !["I420", "I420A", "I422", "I444", "NV12"].includes(frame.format)) return undefined;
  const width = frame.visibleRect?.width ?? frame.codedWidth;
  const height = frame.visibleRect?.height ?? frame.codedHeight;
  const at = layout(width, height);
  if (!at) return undefined;
  const rect = { x: 0, y: 0, width, height: at.rows };
  const buffer = new Uint8Array(frame.allocationSize({ rect }));
  const planes = await frame.copyTo(buffer, { rect });
  const luma = buffer.subarray(planes[0].offset, planes[0].offset + planes[0].stride * at.rows);
  return readStamp(luma, planes[0].stride, width, at.rows);
}
