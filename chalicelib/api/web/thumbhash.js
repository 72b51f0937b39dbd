// ThumbHash decoding for the upload page: the `placeholder` of an image (base64) in, a small
// RGBA picture out, painted while the thumbnails load.
//
// ThumbHash is Evan Wallace's format (https://github.com/evanw/thumbhash). This decoder was
// written for thumbgen from its description; the format's reference code is under the MIT
// licence:
//
//   Copyright (c) 2023 Evan Wallace
//   Permission is hereby granted, free of charge, to any person obtaining a copy of this
//   software and associated documentation files (the "Software"), to deal in the Software
//   without restriction, including without limitation the rights to use, copy, modify, merge,
//   publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
//   to whom the Software is furnished to do so, subject to the following conditions: The above
//   copyright notice and this permission notice shall be included in all copies or substantial
//   portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
//
// The layout: 24 bits of constants (the L, P, Q averages, L's scale, an alpha flag), 16 more
// (L's count of terms along the shorter side, P's and Q's scales, a landscape flag), a byte
// of alpha constants when there is alpha, then 4-bit DCT coefficients of L (luminance), P
// (yellow-blue), Q (red-green) and A (alpha), each channel a triangle of low frequencies.

const SIDE = 32;  // the decoded picture's longer side, in pixels

/** The bytes of a base64 ThumbHash. */
export function thumbHashBytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// The (cx, cy) frequencies a channel of nx x ny terms keeps, in stored order (not 0, 0: that
// one is the channel's average, stored in the constants).
function frequencies(nx, ny) {
  const kept = [];
  for (let cy = 0; cy < ny; cy++) {
    for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) kept.push([cx, cy]);
  }
  return kept;
}

/** {width, height, rgba}: the picture a ThumbHash describes (at most 32 px a side, RGBA not
 * premultiplied). Throws on bytes too short to be one. */
export function decodeThumbHash(hash) {
  if (hash.length < 5) throw new Error("a ThumbHash has at least 5 bytes");
  const constants = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const shape = hash[3] | (hash[4] << 8);
  const hasAlpha = (constants >> 23) & 1;
  const landscape = (shape >> 15) & 1;
  const longTerms = hasAlpha ? 5 : 7;
  const shortTerms = shape & 7;
  if (!shortTerms) throw new Error("not a ThumbHash: no luminance terms");
  const lx = Math.max(3, landscape ? longTerms : shortTerms);
  const ly = Math.max(3, landscape ? shortTerms : longTerms);

  const channels = [
    { dc: (constants & 63) / 63, scale: ((constants >> 18) & 31) / 31, terms: frequencies(lx, ly) },
    { dc: ((constants >> 6) & 63) / 31.5 - 1, scale: (((shape >> 3) & 63) / 63) * 1.25, terms: frequencies(3, 3) },
    { dc: ((constants >> 12) & 63) / 31.5 - 1, scale: (((shape >> 9) & 63) / 63) * 1.25, terms: frequencies(3, 3) },
  ];
  if (hasAlpha) {
    if (hash.length < 6) throw new Error("a ThumbHash with alpha has at least 6 bytes");
    channels.push({ dc: (hash[5] & 15) / 15, scale: (hash[5] >> 4) / 15, terms: frequencies(5, 5) });
  }
  const start = hasAlpha ? 6 : 5;
  const count = channels.reduce((n, c) => n + c.terms.length, 0);
  if (hash.length < start + Math.ceil(count / 2)) throw new Error("a ThumbHash cut short");
  let nibble = 0;
  for (const channel of channels) {  // two coefficients a byte, low nibble first
    channel.values = channel.terms.map(() => {
      const bits = (hash[start + (nibble >> 1)] >> ((nibble & 1) * 4)) & 15;
      nibble += 1;
      return (bits / 7.5 - 1) * channel.scale;
    });
  }

  const ratio = (landscape ? longTerms : shortTerms) / (landscape ? shortTerms : longTerms);
  const width = Math.max(1, Math.round(ratio > 1 ? SIDE : SIDE * ratio));
  const height = Math.max(1, Math.round(ratio > 1 ? SIDE / ratio : SIDE));
  const cosines = (n, size) => Array.from({ length: 7 }, (_, k) =>
    Array.from({ length: n }, (_, i) => Math.cos((Math.PI / size) * (i + 0.5) * k)));
  const cx = cosines(width, width), cy = cosines(height, height);
  const rgba = new Uint8ClampedArray(width * height * 4);
  const sample = (channel, x, y) => channel.terms.reduce(
    (sum, [fx, fy], j) => sum + channel.values[j] * cx[fx][x] * cy[fy][y] * 2, channel.dc);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 4) {
      const [l, p, q, a = 1] = channels.map((channel) => sample(channel, x, y));
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      rgba[i] = 255 * r;  // Uint8ClampedArray rounds and clamps to 0-255
      rgba[i + 1] = 255 * (r - q);
      rgba[i + 2] = 255 * b;
      rgba[i + 3] = 255 * a;
    }
  }
  return { width, height, rgba };
}
