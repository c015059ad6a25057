// A drawing made into the model's input in the page, without the server: the steps of
// kmnist.predict.images (decode_picture's gray, then to_mnist), so the page on the device gives
// the model the picture the server would (tests/test_serve_device.py holds the two together).
//   grayscale(imageData)          RGBA canvas pixels -> Uint8Array gray: transparency as white
//                                 paper, Pillow's convert("L") weights (ITU-R 601-2, fixed point);
//   toMnist(gray, width, height)  -> Uint8Array(784): refuses blank pictures, inverts
//                                 dark-on-light, fits the digit's box into 20x20 with Pillow 13's
//                                 LANCZOS (Resample.c: two passes, 22-bit fixed point), and puts
//                                 its centre of mass on pixel (14, 14).
// Python's round() rounds halves to even; roundHalfEven does the same where to_mnist rounds.
// Not ported: to_mnist's noise check (neighbouring pixels' correlation), which a drawing passes.

const SIZE = 28;
const BOX = 20;
const MIN_SIDE = 8;
const BLANK_LEVELS = 16;
const PRECISION_BITS = 32 - 8 - 2;

export class PictureError extends Error {}

export function grayscale(imageData) {
  const {data, width, height} = imageData;
  const gray = new Uint8Array(width * height);
  for (let i = 0; i < width * height; i++) {
    let r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2];
    const a = data[4 * i + 3];
    if (a !== 255) { // over white paper, as Image.alpha_composite puts it
      const over = function (c) { return Math.round((c * a + 255 * (255 - a)) / 255); };
      r = over(r); g = over(g); b = over(b);
    }
    gray[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  }
  return gray;
}

export function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

export function toMnist(gray, width, height) {
  if (Math.min(width, height) < MIN_SIDE) {
    throw new PictureError(`${width}x${height} pixels is too small to hold a digit`);
  }
  let lo = 255, hi = 0;
  for (const v of gray) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (hi - lo < BLANK_LEVELS) throw new PictureError("the drawing is blank; draw one digit");
  if (darkOnLight(gray, width, height)) gray = gray.map(function (v) { return 255 - v; });
  if (width === SIZE && height === SIZE) return Uint8Array.from(gray);
  return fitAndCentre(gray, width, height);
}

function darkOnLight(gray, width, height) {
  const border = [];
  for (let x = 0; x < width; x++) border.push(gray[x], gray[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) border.push(gray[y * width], gray[y * width + width - 1]);
  border.sort(function (a, b) { return a - b; });
  const n = border.length; // numpy's median: the mean of the middle two of an even count
  const median = n % 2 ? border[(n - 1) / 2] : (border[n / 2 - 1] + border[n / 2]) / 2;
  return median > 127;
}

function fitAndCentre(gray, width, height) {
  let max = 0;
  for (const v of gray) if (v > max) max = v;
  const threshold = 0.2 * max; // numpy: gray > 0.2 * gray.max()
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (gray[y * width + x] > threshold) {
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0) throw new PictureError("the drawing is blank; draw one digit");
  const h = bottom - top + 1, w = right - left + 1;
  const crop = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    crop.set(gray.subarray((top + y) * width + left, (top + y) * width + left + w), y * w);
  }
  const scale = BOX / Math.max(w, h);
  const outW = Math.max(1, roundHalfEven(w * scale)), outH = Math.max(1, roundHalfEven(h * scale));
  const digit = lanczosResize(crop, w, h, outW, outH);
  let total = 0, sumY = 0, sumX = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = digit[y * outW + x];
      total += v; sumY += v * y; sumX += v * x;
    }
  }
  if (!(total > 0)) throw new PictureError("the drawing is blank; draw one digit");
  const clamp = function (v, lo, hi) { return Math.min(Math.max(v, lo), hi); };
  const top0 = clamp(roundHalfEven(SIZE / 2 - sumY / total), 0, SIZE - outH);
  const left0 = clamp(roundHalfEven(SIZE / 2 - sumX / total), 0, SIZE - outW);
  const field = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < outH; y++) {
    field.set(digit.subarray(y * outW, (y + 1) * outW), (top0 + y) * SIZE + left0);
  }
  return field;
}

// Pillow's Resample.c for 8-bit images: LANCZOS (a = 3) taps per output pixel, stretched by the
// downscale factor, normalised, in 22-bit fixed point; horizontal pass, then vertical, each
// rounded and clipped to 0-255.
function sinc(x) { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; }
function lanczos(x) { return (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0; }

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const taps = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const weights = [];
    let sum = 0;
    for (let x = 0; x < count; x++) {
      const w = lanczos((x + xmin - center + 0.5) / filterScale);
      weights.push(w); sum += w;
    }
    const fixed = weights.map(function (w) {
      const k = sum !== 0 ? w / sum : w;
      return Math.trunc((k < 0 ? -0.5 : 0.5) + k * (1 << PRECISION_BITS));
    });
    taps.push({xmin: xmin, k: fixed});
  }
  return taps;
}

function clip8(v) {
  const shifted = Math.floor(v / (1 << PRECISION_BITS)); // v >> 22 without 32-bit overflow
  return shifted < 0 ? 0 : shifted > 255 ? 255 : shifted;
}

function resizePass(image, width, height, outSize, horizontal) {
  const taps = coefficients(horizontal ? width : height, outSize);
  const outW = horizontal ? outSize : width, outH = horizontal ? height : outSize;
  const out = new Uint8Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const {xmin, k} = taps[horizontal ? x : y];
      let ss = 1 << (PRECISION_BITS - 1);
      for (let i = 0; i < k.length; i++) {
        ss += k[i] * (horizontal ? image[y * width + xmin + i] : image[(xmin + i) * width + x]);
      }
      out[y * outW + x] = clip8(ss);
    }
  }
  return out;
}

function lanczosResize(src, w, h, outW, outH) {
  // Pillow 13 runs the vertical pass first when the height shrinks more than twice as much as
  // the width (ImagingResampleInner); the order changes the rounding between the passes.
  const horizontalFirst = !(h - outH > 0 && h - outH > (w - outW) * 2);
  let image = src;
  if (horizontalFirst) {
    if (outW !== w) image = resizePass(image, w, h, outW, true);
    if (outH !== h) image = resizePass(image, outW, h, outH, false);
  } else {
    if (outH !== h) image = resizePass(image, w, h, outH, false);
    if (outW !== w) image = resizePass(image, w, outH, outW, true);
  }
  return image;
}
