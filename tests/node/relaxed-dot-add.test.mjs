// web/scripts/relaxed-dot-add.mjs, which puts relaxed SIMD's dot-add into the relaxed engines
// after linking: on a module made here by hand, the calls of the marker import become the
// instruction, the module still validates, and the instruction computes the dot-add.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { patchRelaxedDotAdd } from '../../web/scripts/relaxed-dot-add.mjs';

const ascii = (s) => [...Buffer.from(s)];
const name = (s) => [s.length, ...ascii(s)];
const section = (id, bytes) => [id, bytes.length, ...bytes]; // every section here is < 128 bytes

// run(p): stores dot_add(load(p), load(p + 16), load(p + 32)) at p + 48, calling the marker
// import (function 1; function 0 is another import). Around the call: immediates of several
// kinds (a multi-byte constant, a block with br_table, a 16-byte v128.const) for the patcher to
// step over. The patcher knows the marker by its type, (v128, v128, v128) -> v128, since
// Emscripten renames imports; with `operands` 2 the import is (v128, v128) -> v128 instead.
function moduleCallingTheMarker(operands = 3) {
  const body = [
    0x00, // no locals
    0x41, 0xc0, 0x84, 0x3d, 0x1a, // i32.const 1000000, drop
    0x02, 0x40, 0x41, 0x00, 0x0e, 0x01, 0x00, 0x00, 0x0b, // block, i32.const 0, br_table [0] 0, end
    0xfd, 0x0c, ...new Array(16).fill(7), 0x1a, // v128.const, drop
    0x20, 0x00, // local.get 0 (the store's address)
    0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, // v128.load offset 0
    0x20, 0x00, 0xfd, 0x00, 0x04, 0x10, // v128.load offset 16
    ...(operands === 3 ? [0x20, 0x00, 0xfd, 0x00, 0x04, 0x20] : []), // v128.load offset 32
    0x10, 0x01, // call 1
    0xfd, 0x0b, 0x04, 0x30, // v128.store offset 48
    0x0b,
  ];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [2, 0x60, operands, ...new Array(operands).fill(0x7b), 1, 0x7b, 0x60, 1, 0x7f, 0]),
    ...section(2, [2, ...name('env'), ...name('other'), 0x00, 1, ...name('env'), ...name('pipit_relaxed_dot_add'), 0x00, 0]),
    ...section(3, [1, 1]),
    ...section(5, [1, 0x00, 1]),
    ...section(7, [2, ...name('run'), 0x00, 2, ...name('memory'), 0x02, 0]),
    ...section(10, [1, body.length, ...body]),
  ]);
}

test('the marker calls become i32x4.relaxed_dot_i8x16_i7x16_add_s, which computes the dot-add', () => {
  const original = moduleCallingTheMarker();
  const { bytes, replaced } = patchRelaxedDotAdd(original);
  assert.equal(replaced, 1);
  assert.equal(bytes.length, original.length + 1); // `call 1` is 2 bytes, the instruction 3
  assert.ok(Buffer.from(bytes).includes(Buffer.from([0xfd, 0x93, 0x02])));
  // Node 20 has relaxed SIMD behind a flag, and its baseline compiler doubles the sums.
  const script = `
    const bytes = Buffer.from(${JSON.stringify(Buffer.from(bytes).toString('base64'))}, 'base64');
    const { instance } = await WebAssembly.instantiate(bytes, { env: { other() {}, pipit_relaxed_dot_add() { throw new Error('called'); } } });
    const view = new DataView(instance.exports.memory.buffer);
    const a = [], b = [], c = [];
    for (let i = 0; i < 16; ++i) { a.push(((i * 37) % 255) - 127); b.push((i * 29) % 128); }
    for (let l = 0; l < 4; ++l) c.push(l * 1000 - 1500);
    a.forEach((v, i) => view.setInt8(i, v)); b.forEach((v, i) => view.setInt8(16 + i, v));
    c.forEach((v, l) => view.setInt32(32 + 4 * l, v, true));
    instance.exports.run(0);
    const got = [0, 1, 2, 3].map((l) => view.getInt32(48 + 4 * l, true));
    const want = c.map((v, l) => v + [0, 1, 2, 3].reduce((s, j) => s + a[4 * l + j] * b[4 * l + j], 0));
    console.log(JSON.stringify({ got, want }));`;
  const out = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--no-liftoff', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const { got, want } = JSON.parse(out.trim());
  assert.deepEqual(got, want);
});

test('a module without an import of the marker\'s type comes back as it was', () => {
  const other = moduleCallingTheMarker(2);
  assert.ok(WebAssembly.validate(other));
  const { bytes, replaced } = patchRelaxedDotAdd(other);
  assert.equal(replaced, 0);
  assert.deepEqual(bytes, other);
});

test('an opcode the patcher does not know stops it instead of being misread', () => {
  const broken = moduleCallingTheMarker();
  broken[broken.length - 1] = 0xd5; // the function's final `end`, now an opcode no one has
  assert.throws(() => patchRelaxedDotAdd(broken), /unknown opcode 0xd5/);
  assert.throws(() => patchRelaxedDotAdd(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])), /not a WASM module/);
});
