"""The ThumbHash reference algorithm (https://github.com/evanw/thumbhash, js/thumbhash.js),
ported line by line and kept deliberately naive, to check chalicelib/imaging/thumbhash.py against:
`rgba_to_thumb_hash` (the per-coefficient double loop), `thumb_hash_to_rgba`,
`thumb_hash_to_average_rgba` and `thumb_hash_to_approximate_aspect_ratio`."""
from __future__ import annotations

import math


def _js_round(value: float) -> int:
    return math.floor(value + 0.5)


def rgba_to_thumb_hash(w: int, h: int, rgba: bytes) -> bytes:
    assert w <= 100 and h <= 100 and len(rgba) == w * h * 4
    avg_r = avg_g = avg_b = avg_a = 0.0
    for i in range(w * h):
        alpha = rgba[4 * i + 3] / 255
        avg_r += alpha / 255 * rgba[4 * i]
        avg_g += alpha / 255 * rgba[4 * i + 1]
        avg_b += alpha / 255 * rgba[4 * i + 2]
        avg_a += alpha
    if avg_a:
        avg_r /= avg_a
        avg_g /= avg_a
        avg_b /= avg_a
    has_alpha = avg_a < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))
    lum, p, q, a = [], [], [], []
    for i in range(w * h):
        alpha = rgba[4 * i + 3] / 255
        r = avg_r * (1 - alpha) + alpha / 255 * rgba[4 * i]
        g = avg_g * (1 - alpha) + alpha / 255 * rgba[4 * i + 1]
        b = avg_b * (1 - alpha) + alpha / 255 * rgba[4 * i + 2]
        lum.append((r + g + b) / 3)
        p.append((r + g) / 2 - b)
        q.append(r - g)
        a.append(alpha)

    def encode_channel(channel: list[float], nx: int, ny: int) -> tuple[float, list[float], float]:
        dc, ac, scale = 0.0, [], 0.0
        for cy in range(ny):
            cx = 0
            while cx * ny < nx * (ny - cy):
                f = 0.0
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                for y in range(h):
                    fy = math.cos(math.pi / h * cy * (y + 0.5))
                    for x in range(w):
                        f += channel[x + y * w] * fx[x] * fy
                f /= w * h
                if cx or cy:
                    ac.append(f)
                    scale = max(scale, abs(f))
                else:
                    dc = f
                cx += 1
        if scale:
            ac = [0.5 + 0.5 / scale * v for v in ac]
        return dc, ac, scale

    l_dc, l_ac, l_scale = encode_channel(lum, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = encode_channel(p, 3, 3)
    q_dc, q_ac, q_scale = encode_channel(q, 3, 3)
    if has_alpha:
        a_dc, a_ac, a_scale = encode_channel(a, 5, 5)
    is_landscape = w > h
    header24 = (_js_round(63 * l_dc) | (_js_round(31.5 + 31.5 * p_dc) << 6) | (_js_round(31.5 + 31.5 * q_dc) << 12)
                | (_js_round(31 * l_scale) << 18) | (int(has_alpha) << 23))
    header16 = ((ly if is_landscape else lx) | (_js_round(63 * p_scale) << 3) | (_js_round(63 * q_scale) << 9)
                | (int(is_landscape) << 15))
    hash_ = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    ac_start = 6 if has_alpha else 5
    ac_index = 0
    if has_alpha:
        hash_.append(_js_round(15 * a_dc) | (_js_round(15 * a_scale) << 4))
    for ac in ([l_ac, p_ac, q_ac, a_ac] if has_alpha else [l_ac, p_ac, q_ac]):
        for f in ac:
            pos = ac_start + (ac_index >> 1)
            while len(hash_) <= pos:
                hash_.append(0)
            hash_[pos] |= _js_round(15 * f) << ((ac_index & 1) << 2)
            ac_index += 1
    return bytes(hash_)


def thumb_hash_to_approximate_aspect_ratio(hash_: bytes) -> float:
    header = hash_[3]
    has_alpha = bool(hash_[2] & 0x80)
    is_landscape = bool(hash_[4] & 0x80)
    lx = (5 if has_alpha else 7) if is_landscape else header & 7
    ly = header & 7 if is_landscape else (5 if has_alpha else 7)
    return lx / ly


def thumb_hash_to_average_rgba(hash_: bytes) -> tuple[float, float, float, float]:
    header = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    lum = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    has_alpha = header >> 23
    a = (hash_[5] & 15) / 15 if has_alpha else 1.0
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    g = r - q
    return (max(0, min(1, r)), max(0, min(1, g)), max(0, min(1, b)), a)


def thumb_hash_to_rgba(hash_: bytes) -> tuple[int, int, bytes]:
    header24 = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    header16 = hash_[3] | (hash_[4] << 8)
    l_dc = (header24 & 63) / 63
    p_dc = ((header24 >> 6) & 63) / 31.5 - 1
    q_dc = ((header24 >> 12) & 63) / 31.5 - 1
    l_scale = ((header24 >> 18) & 31) / 31
    has_alpha = header24 >> 23
    p_scale = ((header16 >> 3) & 63) / 63
    q_scale = ((header16 >> 9) & 63) / 63
    is_landscape = header16 >> 15
    lx = max(3, (5 if has_alpha else 7) if is_landscape else header16 & 7)
    ly = max(3, header16 & 7 if is_landscape else (5 if has_alpha else 7))
    a_dc = (hash_[5] & 15) / 15 if has_alpha else 1.0
    a_scale = (hash_[5] >> 4) / 15
    ac_start = 6 if has_alpha else 5
    ac_index = 0

    def decode_channel(nx: int, ny: int, scale: float) -> list[float]:
        nonlocal ac_index
        ac = []
        for cy in range(ny):
            cx = 0 if cy else 1
            while cx * ny < nx * (ny - cy):
                ac.append((((hash_[ac_start + (ac_index >> 1)] >> ((ac_index & 1) << 2)) & 15) / 7.5 - 1) * scale)
                ac_index += 1
                cx += 1
        return ac

    l_ac = decode_channel(lx, ly, l_scale)
    p_ac = decode_channel(3, 3, p_scale * 1.25)
    q_ac = decode_channel(3, 3, q_scale * 1.25)
    a_ac = decode_channel(5, 5, a_scale) if has_alpha else []
    ratio = thumb_hash_to_approximate_aspect_ratio(hash_)
    w = _js_round(32 if ratio > 1 else 32 * ratio)
    h = _js_round(32 / ratio if ratio > 1 else 32)
    out = bytearray()
    for y in range(h):
        for x in range(w):
            lum, p, q, a = l_dc, p_dc, q_dc, a_dc
            fx = [math.cos(math.pi / w * (x + 0.5) * cx) for cx in range(max(lx, 5 if has_alpha else 3))]
            fy = [math.cos(math.pi / h * (y + 0.5) * cy) for cy in range(max(ly, 5 if has_alpha else 3))]
            j = 0
            for cy in range(ly):
                cx = 0 if cy else 1
                fy2 = fy[cy] * 2
                while cx * ly < lx * (ly - cy):
                    lum += l_ac[j] * fx[cx] * fy2
                    j += 1
                    cx += 1
            j = 0
            for cy in range(3):
                cx = 0 if cy else 1
                fy2 = fy[cy] * 2
                while cx < 3 - cy:
                    f = fx[cx] * fy2
                    p += p_ac[j] * f
                    q += q_ac[j] * f
                    j += 1
                    cx += 1
            if has_alpha:
                j = 0
                for cy in range(5):
                    cx = 0 if cy else 1
                    fy2 = fy[cy] * 2
                    while cx < 5 - cy:
                        a += a_ac[j] * fx[cx] * fy2
                        j += 1
                        cx += 1
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            out += bytes(max(0, _js_round(255 * min(1, v))) for v in (r, g, b, a))
    return w, h, bytes(out)
