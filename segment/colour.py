r"""Colour spaces and colour difference: sRGB, CIE 1976 L*a*b* (D65), Oklab, and CIEDE2000 ΔE.

Every conversion is written here from its standard: sRGB's transfer function
and primaries from IEC 61966-2-1, L*a*b* from CIE 15 with the D65 white of
sRGB, Oklab from Björn Ottosson's matrices (2020), ΔE from CIE 142-2001 as
restated by Sharma, Wu & Dalal (2005). The tests hold them to scikit-image
and to the published reference values.

The fit works in one of ``SPACES``, on coordinates of comparable size:

=======  ==============================================  ==================
space    coordinates                                      range
=======  ==============================================  ==================
rgb      the 8-bit sRGB values themselves                 0 .. 255
lab      CIE L*, a*, b* (D65)                             L* 0 .. 100
oklab    Oklab L, a, b times 100 (``OKLAB_SCALE``)        L 0 .. 100
=======  ==============================================  ==================

Oklab is scaled so that its lightness runs 0..100 like L*: the mixture's
``reg_covar`` and k-means' relative ``tol`` then mean the same in both
perceptual spaces.
"""

import numpy as np
from numba import njit, prange

SPACES = ("rgb", "lab", "oklab")
OKLAB_SCALE = 100.0

# IEC 61966-2-1: chromaticities (x, y) of the sRGB primaries and of its white, D65
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
D65_CHROMATICITY = (0.3127, 0.3290)


def rgb_to_xyz_matrix(primaries, white):
    r"""The matrix taking linear RGB to CIE XYZ, from the primaries' and the white's chromaticities.

    Each primary's XYZ is :math:`(x/y, 1, (1-x-y)/y)` scaled by :math:`S_i`,
    chosen so that RGB = (1, 1, 1) gives the white with Y = 1.

    Returns
    -------
    matrix : ndarray of shape (3, 3)
        ``xyz = matrix @ rgb``.
    """
    def xyz(x, y):
        return np.array([x / y, 1.0, (1.0 - x - y) / y])

    columns = np.stack([xyz(x, y) for x, y in primaries], axis=1)
    scales = np.linalg.solve(columns, xyz(*white))
    return columns * scales


SRGB_TO_XYZ = rgb_to_xyz_matrix(SRGB_PRIMARIES, D65_CHROMATICITY)
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)
D65_WHITE = SRGB_TO_XYZ.sum(axis=1)  # XYZ of sRGB white, Y = 1: the reference white of L*a*b*

# Ottosson, "A perceptual color space for image processing" (2020): XYZ -> LMS, and cube-rooted LMS -> Lab
OKLAB_M1 = np.array([[0.8189330101, 0.3618667424, -0.1288597137],
                     [0.0329845436, 0.9293118715, 0.0361456387],
                     [0.0482003018, 0.2643662691, 0.6338517070]])
OKLAB_M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                     [1.9779984951, -2.4285922050, 0.4505937099],
                     [0.0259040371, 0.7827717662, -0.8086757660]])

LAB_EPSILON = 6.0 / 29.0  # CIE 15: f(t) is a cube root above EPSILON**3, a line below it


def srgb_to_linear(values):
    r"""sRGB's electro-optical transfer function (IEC 61966-2-1), values in [0, 1].

    .. math::
        C = C' / 12.92 \quad (C' \le 0.04045), \qquad C = ((C' + 0.055) / 1.055)^{2.4} \quad \text{else}
    """
    values = np.asarray(values, dtype=np.float64)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values):
    r"""The inverse of `srgb_to_linear`: :math:`12.92 C` up to 0.0031308, :math:`1.055 C^{1/2.4} - 0.055` above."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * np.maximum(values, 0.0031308) ** (1 / 2.4) - 0.055)


def _lab_f(t):
    return np.where(t > LAB_EPSILON**3, np.cbrt(t), t / (3 * LAB_EPSILON**2) + 4.0 / 29.0)


def _lab_f_inverse(f):
    return np.where(f > LAB_EPSILON, f**3, 3 * LAB_EPSILON**2 * (f - 4.0 / 29.0))


def xyz_to_lab(xyz, white=D65_WHITE):
    r"""CIE 1976 L*a*b* of XYZ colours (CIE 15).

    .. math::
        L^* = 116 f(Y/Y_n) - 16, \quad a^* = 500 (f(X/X_n) - f(Y/Y_n)), \quad b^* = 200 (f(Y/Y_n) - f(Z/Z_n))

    with :math:`f(t) = t^{1/3}` above :math:`(6/29)^3`, :math:`t / (3 (6/29)^2) + 4/29` below.

    Parameters
    ----------
    xyz : ndarray of shape (n, 3)
    white : ndarray of shape (3,)
        XYZ of the reference white; sRGB's D65 white by default.
    """
    f = _lab_f(np.asarray(xyz, dtype=np.float64) / white)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def lab_to_xyz(lab, white=D65_WHITE):
    """The inverse of `xyz_to_lab`, shape (n, 3)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[:, 0] + 16) / 116
    f = np.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], axis=1)
    return _lab_f_inverse(f) * white


def xyz_to_oklab(xyz):
    r"""Oklab of XYZ colours (Ottosson 2020): :math:`M_2 \sqrt[3]{M_1 \mathrm{XYZ}}`, shape (n, 3), L in 0..1."""
    return np.cbrt(np.asarray(xyz, dtype=np.float64) @ OKLAB_M1.T) @ OKLAB_M2.T


def oklab_to_xyz(oklab):
    """The inverse of `xyz_to_oklab`, shape (n, 3)."""
    return (np.asarray(oklab, dtype=np.float64) @ np.linalg.inv(OKLAB_M2).T) ** 3 @ np.linalg.inv(OKLAB_M1).T


_LINEAR_OF_BYTE = srgb_to_linear(np.arange(256) / 255.0)  # each 8-bit value's linear light, computed once


def srgb8_to_xyz(rgb):
    """XYZ (D65, Y = 1 for white) of 8-bit sRGB colours given as numbers 0..255 (n, 3), by a 256-entry table."""
    return _LINEAR_OF_BYTE[np.asarray(rgb).astype(np.intp)] @ SRGB_TO_XYZ.T


def srgb8_to_lab(rgb):
    """CIE L*a*b* (D65) of 8-bit sRGB colours, shape (n, 3)."""
    return xyz_to_lab(srgb8_to_xyz(rgb))


def to_space(rgb, space):
    """Coordinates of 8-bit sRGB colours (numbers 0..255, shape (n, 3)) in ``space``, float64, for fitting.

    See the module's table: 'rgb' gives the values themselves, 'lab' L*a*b*,
    'oklab' Oklab times ``OKLAB_SCALE``.
    """
    check_space(space)
    if space == "rgb":
        return np.asarray(rgb, dtype=np.float64)
    xyz = srgb8_to_xyz(rgb)
    return xyz_to_lab(xyz) if space == "lab" else xyz_to_oklab(xyz) * OKLAB_SCALE


def from_space(values, space):
    """8-bit sRGB colours (uint8, shape (n, 3)) of coordinates in ``space``, rounded and clipped to the gamut."""
    check_space(space)
    values = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    if space == "rgb":
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    xyz = lab_to_xyz(values) if space == "lab" else oklab_to_xyz(values / OKLAB_SCALE)
    linear = np.clip(xyz @ XYZ_TO_SRGB.T, 0.0, 1.0)  # out-of-gamut means are clipped to the sRGB cube
    return np.clip(np.rint(linear_to_srgb(linear) * 255), 0, 255).astype(np.uint8)


def check_space(space):
    if space not in SPACES:
        raise ValueError(f"space={space!r} is not a colour space emseg fits in; use one of {', '.join(SPACES)}.")


# ------------------------------------------------------------------ CIEDE2000

@njit(cache=True)
def _delta_e2000_pair(L1, a1, b1, L2, a2, b2):
    """ΔE00 of one pair of L*a*b* colours (kL = kC = kH = 1), following Sharma, Wu & Dalal (2005), eqs. (1)-(22)."""
    C7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    G = 0.5 * (1 - np.sqrt(C7 / (C7 + 25.0**7)))
    a1p, a2p = (1 + G) * a1, (1 + G) * a2
    C1p, C2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    # hue angles in degrees in [0, 360); 0 for a neutral colour
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0 if (a1p != 0 or b1 != 0) else 0.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0 if (a2p != 0 or b2 != 0) else 0.0
    dLp, dCp = L2 - L1, C2p - C1p
    neutral = C1p * C2p == 0
    dhp = h2p - h1p
    if neutral:
        dhp = 0.0
    elif dhp > 180:
        dhp -= 360.0
    elif dhp < -180:
        dhp += 360.0
    dHp = 2 * np.sqrt(C1p * C2p) * np.sin(np.radians(dhp) / 2)
    Lbar, Cbar = (L1 + L2) / 2, (C1p + C2p) / 2
    if neutral:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        hbar = (h1p + h2p + 360) / 2
    else:
        hbar = (h1p + h2p - 360) / 2
    T = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    dtheta = 30 * np.exp(-(((hbar - 275) / 25) ** 2))
    Cbar7 = Cbar**7
    RC = 2 * np.sqrt(Cbar7 / (Cbar7 + 25.0**7))
    SL = 1 + 0.015 * (Lbar - 50) ** 2 / np.sqrt(20 + (Lbar - 50) ** 2)
    SC = 1 + 0.045 * Cbar
    SH = 1 + 0.015 * Cbar * T
    RT = -np.sin(np.radians(2 * dtheta)) * RC
    l, c, h = dLp / SL, dCp / SC, dHp / SH
    return np.sqrt(l * l + c * c + h * h + RT * c * h)


@njit(parallel=True, cache=True)
def _delta_e2000_indexed(lab1, index1, lab2, index2):
    """ΔE00 of ``lab1[index1[i]]`` and ``lab2[index2[i]]`` for each i: pairs named by index, never copied out."""
    out = np.empty(index1.shape[0], dtype=np.float64)
    for i in prange(index1.shape[0]):
        p, q = index1[i], index2[i]
        out[i] = _delta_e2000_pair(lab1[p, 0], lab1[p, 1], lab1[p, 2], lab2[q, 0], lab2[q, 1], lab2[q, 2])
    return out


def delta_e2000(lab1, lab2):
    r"""CIEDE2000 colour difference ΔE00 of pairs of L*a*b* colours (CIE 142-2001, kL = kC = kH = 1).

    .. math::
        \Delta E_{00} = \sqrt{\left(\frac{\Delta L'}{S_L}\right)^2 + \left(\frac{\Delta C'}{S_C}\right)^2
                        + \left(\frac{\Delta H'}{S_H}\right)^2 + R_T \frac{\Delta C'}{S_C} \frac{\Delta H'}{S_H}}

    with the terms as Sharma, Wu & Dalal (2005) number them, including their
    conventions for a neutral colour and for mean hues 180° apart. Each pair
    is independent: a parallel numba loop.

    Parameters
    ----------
    lab1, lab2 : ndarray of shape (n, 3)

    Returns
    -------
    delta_e : ndarray of shape (n,)
    """
    lab1 = np.ascontiguousarray(lab1, dtype=np.float64).reshape(-1, 3)
    lab2 = np.ascontiguousarray(lab2, dtype=np.float64).reshape(-1, 3)
    if lab1.shape != lab2.shape:
        raise ValueError(f"lab1 and lab2 must have the same shape, got {lab1.shape} and {lab2.shape}.")
    rows = np.arange(len(lab1))
    return _delta_e2000_indexed(lab1, rows, lab2, rows)


def delta_e2000_indexed(lab1, index1, lab2, index2):
    """`delta_e2000` of ``lab1[index1]`` and ``lab2[index2]``, without forming either: for palettes and pixels.

    Parameters
    ----------
    lab1, lab2 : ndarray of shape (n1, 3), (n2, 3)
    index1, index2 : ndarray of shape (n,), integers
        Valid rows of lab1 and lab2 (not checked: the callers build them).
    """
    lab1 = np.ascontiguousarray(lab1, dtype=np.float64)
    lab2 = np.ascontiguousarray(lab2, dtype=np.float64)
    return _delta_e2000_indexed(lab1, np.asarray(index1, dtype=np.int64), lab2, np.asarray(index2, dtype=np.int64))
