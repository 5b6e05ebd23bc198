#!/usr/bin/env node
// Puts relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s into a linked WASM module.
//
// Emscripten 3.1.6 passes every module through its binaryen (Debian's version 108), which
// knows opcode 0x113 by an early draft's meaning: a two-operand i16x8 product. It rewrites the
// instruction into one that no engine accepts ("not enough arguments on the stack"). So the
// C++ (core/simd128.h) calls an imported function of type (v128, v128, v128) -> v128 where it
// means the instruction, binaryen carries the call through untouched, and this script turns
// each call into the instruction after linking. The import stays, never called.
//
//   node web/scripts/relaxed-dot-add.mjs module.wasm   (rewrites the file in place)
import { readFileSync, writeFileSync } from 'node:fs';
import { isMain } from './common.mjs';

const DOT_ADD = [0xfd, 0x93, 0x02]; // SIMD prefix, then 0x113 as an unsigned LEB128
const V128 = 0x7b;

class Reader {
  constructor(bytes, at = 0) {
    this.bytes = bytes;
    this.at = at;
  }
  byte() {
    if (this.at >= this.bytes.length) throw new Error('relaxed-dot-add: module ends inside an instruction');
    return this.bytes[this.at++];
  }
  u32() {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
    }
  }
  skipLeb() {
    while (this.byte() & 0x80);
  }
  skip(n) {
    this.at += n;
  }
  name() {
    const length = this.u32();
    this.skip(length);
  }
}

function leb(value) {
  const out = [];
  do {
    let b = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) b |= 0x80;
    out.push(b);
  } while (value);
  return out;
}

function skipLimits(r) {
  const flags = r.byte();
  r.skipLeb();
  if (flags & 1) r.skipLeb();
}

// The index of the one function import whose type is (v128, v128, v128) -> v128.
function markerIndex(bytes, sections) {
  const types = [];
  const typeSection = sections.find((s) => s.id === 1);
  if (typeSection) {
    const r = new Reader(bytes, typeSection.start);
    for (let n = r.u32(); n > 0; --n) {
      if (r.byte() !== 0x60) throw new Error('relaxed-dot-add: unexpected type form');
      const params = [];
      for (let p = r.u32(); p > 0; --p) params.push(r.byte());
      const results = [];
      for (let q = r.u32(); q > 0; --q) results.push(r.byte());
      types.push(params.length === 3 && params.every((t) => t === V128) && results.length === 1 && results[0] === V128);
    }
  }
  const importSection = sections.find((s) => s.id === 2);
  const found = [];
  if (importSection) {
    const r = new Reader(bytes, importSection.start);
    let functionIndex = 0;
    for (let n = r.u32(); n > 0; --n) {
      r.name();
      r.name();
      const kind = r.byte();
      if (kind === 0) {
        if (types[r.u32()]) found.push(functionIndex);
        functionIndex++;
      } else if (kind === 1) {
        r.byte();
        skipLimits(r);
      } else if (kind === 2) {
        skipLimits(r);
      } else if (kind === 3) {
        r.skip(2);
      } else if (kind === 4) {
        r.byte();
        r.skipLeb();
      } else {
        throw new Error(`relaxed-dot-add: unknown import kind ${kind}`);
      }
    }
  }
  if (found.length > 1) throw new Error('relaxed-dot-add: more than one import of type (v128, v128, v128) -> v128');
  return found.length ? found[0] : undefined;
}

// Skips one instruction's immediates. Covers what Emscripten 3.1.6 emits: the MVP, exceptions,
// bulk memory, sign extension, SIMD (with relaxed SIMD) and atomics. Anything else stops the
// build rather than risk a misread.
function skipImmediates(r, opcode) {
  const memarg = () => {
    r.skipLeb();
    r.skipLeb();
  };
  const blockType = () => {
    const b = r.bytes[r.at];
    if (b === 0x40 || (b >= 0x6f && b <= 0x7f)) r.skip(1);
    else r.skipLeb();
  };
  if (opcode === 0x02 || opcode === 0x03 || opcode === 0x04 || opcode === 0x06) return blockType();
  if ([0x07, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x12, 0x18, 0x25, 0x26, 0xd2].includes(opcode)) return r.skipLeb();
  if (opcode >= 0x20 && opcode <= 0x24) return r.skipLeb();
  if (opcode === 0x0e) {
    for (let n = r.u32(); n >= 0; --n) r.skipLeb();
    return undefined;
  }
  if (opcode === 0x11 || opcode === 0x13) {
    r.skipLeb();
    return r.skipLeb();
  }
  if (opcode === 0x1c) return r.skip(r.u32());
  if (opcode >= 0x28 && opcode <= 0x3e) return memarg();
  if (opcode === 0x3f || opcode === 0x40 || opcode === 0xd0) return r.skip(1);
  if (opcode === 0x41 || opcode === 0x42) return r.skipLeb();
  if (opcode === 0x43) return r.skip(4);
  if (opcode === 0x44) return r.skip(8);
  if (opcode === 0xfc) {
    const sub = r.u32();
    if (sub <= 7) return undefined;
    if (sub === 8) {
      r.skipLeb();
      return r.skip(1);
    }
    if (sub === 9 || sub === 13 || (sub >= 15 && sub <= 17)) return r.skipLeb();
    if (sub === 10) return r.skip(2);
    if (sub === 11) return r.skip(1);
    if (sub === 12 || sub === 14) {
      r.skipLeb();
      return r.skipLeb();
    }
    throw new Error(`relaxed-dot-add: unknown instruction 0xfc ${sub}`);
  }
  if (opcode === 0xfd) {
    const sub = r.u32();
    if (sub <= 11 || sub === 92 || sub === 93) return memarg();
    if (sub === 12 || sub === 13) return r.skip(16);
    if (sub >= 21 && sub <= 34) return r.skip(1);
    if (sub >= 84 && sub <= 91) {
      memarg();
      return r.skip(1);
    }
    return undefined;
  }
  if (opcode === 0xfe) {
    const sub = r.u32();
    if (sub === 3) return r.skip(1);
    return memarg();
  }
  const plain = opcode <= 0x01 || opcode === 0x05 || opcode === 0x0b || opcode === 0x0f || opcode === 0x19 ||
    opcode === 0x1a || opcode === 0x1b || (opcode >= 0x45 && opcode <= 0xc4) || opcode === 0xd1;
  if (!plain) throw new Error(`relaxed-dot-add: unknown opcode 0x${opcode.toString(16)}`);
  return undefined;
}

// The module with every call of the marker import replaced by the instruction, and how many
// there were. A module without the import comes back as it is.
export function patchRelaxedDotAdd(bytes) {
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error('relaxed-dot-add: not a WASM module');
  }
  const sections = [];
  const r = new Reader(bytes, 8);
  while (r.at < bytes.length) {
    const headerStart = r.at;
    const id = r.byte();
    const size = r.u32();
    sections.push({ id, headerStart, start: r.at, end: r.at + size });
    r.skip(size);
  }
  const marker = markerIndex(bytes, sections);
  const code = sections.find((s) => s.id === 10);
  if (marker === undefined || !code) return { bytes, replaced: 0 };

  let replaced = 0;
  const bodies = [];
  const c = new Reader(bytes, code.start);
  const count = c.u32();
  for (let f = 0; f < count; ++f) {
    const size = c.u32();
    const end = c.at + size;
    const body = new Reader(bytes, c.at);
    for (let n = body.u32(); n > 0; --n) {
      body.skipLeb();
      body.byte();
    }
    const pieces = [];
    let copiedTo = c.at;
    while (body.at < end) {
      const start = body.at;
      const opcode = body.byte();
      if (opcode === 0x10 && new Reader(bytes, body.at).u32() === marker) {
        pieces.push(bytes.subarray(copiedTo, start), Uint8Array.from(DOT_ADD));
        body.skipLeb();
        copiedTo = body.at;
        replaced++;
        continue;
      }
      skipImmediates(body, opcode);
    }
    if (body.at !== end) throw new Error(`relaxed-dot-add: function ${f} does not end where its size says`);
    pieces.push(bytes.subarray(copiedTo, end));
    const length = pieces.reduce((sum, p) => sum + p.length, 0);
    bodies.push(Uint8Array.from(leb(length)), ...pieces);
    c.at = end;
  }
  const contents = [Uint8Array.from(leb(count)), ...bodies];
  const contentLength = contents.reduce((sum, p) => sum + p.length, 0);
  const out = [
    bytes.subarray(0, code.headerStart),
    Uint8Array.from([10, ...leb(contentLength)]),
    ...contents,
    bytes.subarray(code.end),
  ];
  const result = new Uint8Array(out.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of out) {
    result.set(p, at);
    at += p.length;
  }
  return { bytes: result, replaced };
}

if (isMain(import.meta.url)) {
  for (const file of process.argv.slice(2)) {
    const { bytes, replaced } = patchRelaxedDotAdd(readFileSync(file));
    writeFileSync(file, bytes);
    console.log(`relaxed-dot-add: ${file}: ${replaced} instructions`);
  }
}
