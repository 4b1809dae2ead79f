import test from 'ava';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '@longattn/tensor';

test('every float16 bit pattern survives f16 → f32 → f16 (NaNs stay NaN)', (t) => {
  let bad = 0;
  for (let b = 0; b < 65536; b++) {
    const x = f16ToF32(b);
    const back = f32ToF16(x);
    if (Number.isNaN(x) ? !Number.isNaN(f16ToF32(back)) : back !== b) bad++;
  }
  t.is(bad, 0);
});

test('float16 known values and rounding to nearest even', (t) => {
  t.is(f16ToF32(0x3c00), 1);
  t.is(f16ToF32(0xc000), -2);
  t.is(f16ToF32(0x7bff), 65504);
  t.is(f16ToF32(0x0001), 2 ** -24);
  t.is(f16ToF32(0x7c00), Infinity);
  t.is(f16ToF32(0xfc00), -Infinity);
  t.true(Number.isNaN(f16ToF32(0x7e00)));
  t.true(Object.is(f16ToF32(0x8000), -0));
  t.is(f32ToF16(1 + 2 ** -11), 0x3c00, 'tie between 1 and next rounds to even (1)');
  t.is(f32ToF16(1 + 3 * 2 ** -11), 0x3c02, 'tie rounds to even (up)');
  t.is(f32ToF16(1 + 2 ** -11 + 2 ** -20), 0x3c01, 'above the tie rounds up');
  t.is(f32ToF16(65520), 0x7c00, 'half-way past the largest finite overflows to Inf');
  t.is(f32ToF16(65519), 0x7bff);
  t.is(f32ToF16(2 ** -25), 0, 'tie at half the smallest subnormal rounds to even (0)');
  t.is(f32ToF16(2 ** -25 * 1.0001), 1);
  t.is(f32ToF16(3 * 2 ** -25), 2, 'subnormal tie rounds to even');
  t.is(f32ToF16(-1e-10), 0x8000);
  t.is(f32ToF16(1e10), 0x7c00);
  t.is(f32ToF16(NaN) & 0x7e00, 0x7e00);
});

test('bfloat16 conversions round to nearest even and keep specials', (t) => {
  for (let b = 0; b < 65536; b += 7) {
    const x = bf16ToF32(b);
    if (!Number.isNaN(x)) t.is(f32ToBf16(x), b);
  }
  t.is(bf16ToF32(0x3f80), 1);
  t.is(f32ToBf16(1 + 2 ** -8), 0x3f80, 'tie rounds to even (down)');
  t.is(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82, 'tie rounds to even (up)');
  t.is(f32ToBf16(Infinity), 0x7f80);
  t.is(f32ToBf16(-Infinity), 0xff80);
  t.true(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  t.is(f32ToBf16(3.4e38), 0x7f80, 'rounds past the largest finite bfloat16 to Inf');
});
