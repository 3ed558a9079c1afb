// H.264 parameter sets as the page reads them before a decoder sees them: the picture size a
// sequence parameter set declares, from an avcC (the catalog's description) or in band. The
// same fields as proto/src/h264.rs (sps_size), which moq-sub uses.

const NAL_SPS = 7;

/** How a track's frames carry their NAL units: `lengthSize`-byte prefixes (avc1), or start codes (avc3). */
export type Framing = { lengthSize: number } | "annexb";

/** The framing and the SPS units of an avcC (ISO 14496-15 AVCDecoderConfigurationRecord). */
export function avcc(record: Uint8Array): { framing: Framing; sps: Uint8Array[] } {
  if (record.length < 6) throw new Error("the avcC is cut short");
  const lengthSize = (record[4] & 3) + 1;
  const sps: Uint8Array[] = [];
  let at = 6;
  for (let i = 0; i < (record[5] & 0x1f); i++) {
    if (at + 2 > record.length) throw new Error("the avcC is cut short");
    const len = (record[at] << 8) | record[at + 1];
    if (at + 2 + len > record.length) throw new Error("an avcC parameter set is cut short");
    sps.push(record.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return { framing: { lengthSize }, sps };
}

/** The SPS units in one frame's payload. */
export function* spsUnits(data: Uint8Array, framing: Framing): Generator<Uint8Array> {
  if (framing === "annexb") {
    let start = -1;
    for (let i = 0; i + 2 < data.length; i++) {
      if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
      if (start >= 0 && (data[start] & 0x1f) === NAL_SPS) yield data.subarray(start, i);
      start = i + 3;
      i += 2;
    }
    if (start >= 0 && start < data.length && (data[start] & 0x1f) === NAL_SPS) yield data.subarray(start);
    return;
  }
  const { lengthSize } = framing;
  for (let at = 0; at + lengthSize <= data.length; ) {
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + data[at + i];
    const unit = data.subarray(at + lengthSize, at + lengthSize + len);
    if (unit.length > 0 && (unit[0] & 0x1f) === NAL_SPS) yield unit;
    at += lengthSize + len;
  }
}

/** The picture size an SPS unit declares: width and height before cropping, in pixels. */
export function spsSize(unit: Uint8Array): [number, number] {
  if ((unit[0] & 0x1f) !== NAL_SPS) throw new Error("not a sequence parameter set");
  const bits = new Bits(unescape(unit.subarray(1, Math.min(unit.length, 1024))));
  const profile = bits.read(8);
  bits.read(16); // constraint flags, level
  bits.ue(); // seq_parameter_set_id
  if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
    const chromaFormat = bits.ue();
    if (chromaFormat === 3) bits.read(1); // separate_colour_plane_flag
    bits.ue(); // bit_depth_luma_minus8
    bits.ue(); // bit_depth_chroma_minus8
    bits.read(1); // qpprime_y_zero_transform_bypass_flag
    if (bits.read(1) === 1) {
      for (let i = 0; i < (chromaFormat === 3 ? 12 : 8); i++) {
        if (bits.read(1) === 1) skipScalingList(bits, i < 6 ? 16 : 64);
      }
    }
  }
  bits.ue(); // log2_max_frame_num_minus4
  const pocType = bits.ue();
  if (pocType === 0) {
    bits.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    bits.read(1); // delta_pic_order_always_zero_flag
    bits.ue(); // offset_for_non_ref_pic
    bits.ue(); // offset_for_top_to_bottom_field
    const cycle = Math.min(bits.ue(), 255);
    for (let i = 0; i < cycle; i++) bits.ue(); // offset_for_ref_frame
  }
  bits.ue(); // max_num_ref_frames
  bits.read(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = bits.ue() + 1;
  const heightUnits = bits.ue() + 1;
  const frameMbsOnly = bits.read(1);
  return [widthMbs * 16, heightUnits * (2 - frameMbsOnly) * 16];
}

function skipScalingList(bits: Bits, size: number) {
  let [last, next] = [8, 8];
  for (let i = 0; i < size; i++) {
    if (next !== 0) next = (last + se(bits.ue()) + 256) % 256;
    if (next !== 0) last = next;
  }
}

/** A signed Exp-Golomb value from its unsigned code. */
const se = (k: number) => (k % 2 === 1 ? (k + 1) / 2 : -(k / 2));

/** An RBSP: emulation prevention bytes (the 3 of 0 0 3) removed. */
function unescape(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let zeros = 0;
  for (const byte of data) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0;
      continue;
    }
    zeros = byte === 0 ? zeros + 1 : 0;
    out.push(byte);
  }
  return Uint8Array.from(out);
}

/** A big-endian bit reader with Exp-Golomb codes. */
class Bits {
  #at = 0;
  constructor(readonly data: Uint8Array) {}

  bit(): number {
    const byte = this.data[this.#at >> 3];
    if (byte === undefined) throw new Error("the parameter set is cut short");
    const bit = (byte >> (7 - (this.#at & 7))) & 1;
    this.#at++;
    return bit;
  }

  read(n: number): number {
    let value = 0;
    for (let i = 0; i < n; i++) value = value * 2 + this.bit();
    return value;
  }

  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new Error("an Exp-Golomb code over 32 bits");
    }
    return 2 ** zeros - 1 + this.read(zeros);
  }
}
