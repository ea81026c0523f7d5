"""Research: a learned linear predictor (least squares on the training photos) against MED, both coded
by tric-wf1's wavefront coder (the figures in perf/RESULTS.md, 2026-11-30, "Tried and dropped").

    python tools/research_linear_predictor.py ../shared/data [N_ACTIVITY_CLASSES]

Fits, per coded plane (G; R with G's 6 neighbours; B with G's and R's), a linear predictor over the
plane's 8 causal neighbours (W, N, NW, NE, WW, NN, NNE, NWW) and, for colour planes, the earlier planes'
(y, x), (y, x+1), W, N, NW, NE, plus a constant, on every second training crop (DATA/train), optionally
per class of CALIC-like texture (activity bins x 3 directions); then codes DATA/kodak, DATA/dev and
DATA/dev_gray with it and with MED. Float fitting and prediction: research only, not a codec path.
"""
import sys
import glob
import numpy as np
from PIL import Image
from tricodec import model as M, wavefront_ref as wr, predictor_ref as pr
from tricodec.context_model import plane_kinds

WF = M.load_model('tric-wf1')
D = ''   # set by main()

def load(set_, n=None):
    fs = sorted(glob.glob(D + set_ + '/*.png'))
    if n: fs = fs[:n]
    out = []
    for f in fs:
        im = Image.open(f)
        a = np.asarray(im.convert('L' if im.mode in ('L', 'I;16') else 'RGB'))
        if a.ndim == 2: a = a[:, :, None]
        out.append((f.split('/')[-1], a))
    return out

def planes_of(a):
    if a.shape[2] == 1: return np.ascontiguousarray(a.transpose(2, 0, 1)), (-1,)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[[1, 0, 2]]), (-1, 0, 0)

def code_bits(res, model=WF):
    p, h, w = res.shape
    c, wd = wr.encode_wavefront_lanes(res, plane_kinds(p), *model.arrays, model.update_steps, model.lane_rows(w, h))
    return 8 * (2 * wd.size + 12 * c.shape[0])

def bpsp(res, model=WF):
    return code_bits(res, model) / res.size

def med_res(a):
    pl, refs = planes_of(a)
    return pr.compute_residuals(pl, refs)


from numba import njit

NOWN = 8; NCROSS = 6

@njit(cache=True)
def nb(px, k, y, x, w):
    # causal neighbours with fallbacks
    if x > 0: W = px[k, y, x-1]
    elif y > 0: W = px[k, y-1, x]
    else: W = 128
    N = px[k, y-1, x] if y > 0 else W
    NW = px[k, y-1, x-1] if (y > 0 and x > 0) else N
    NE = px[k, y-1, x+1] if (y > 0 and x < w-1) else N
    WW = px[k, y, x-2] if x > 1 else W
    NN = px[k, y-2, x] if y > 1 else N
    NNE = px[k, y-2, x+1] if (y > 1 and x < w-1) else NE
    NWW = px[k, y-1, x-2] if (y > 0 and x > 1) else NW
    return W, N, NW, NE, WW, NN, NNE, NWW

@njit(cache=True)
def feats(px, k, qs, y, x, w, f):
    W, N, NW, NE, WW, NN, NNE, NWW = nb(px, k, y, x, w)
    f[0]=W; f[1]=N; f[2]=NW; f[3]=NE; f[4]=WW; f[5]=NN; f[6]=NNE; f[7]=NWW
    i = 8
    for q in qs:
        cW, cN, cNW, cNE, _, _, _, _ = nb(px, q, y, x, w)
        f[i]=px[q,y,x]; f[i+1]=px[q,y,x+1] if x < w-1 else px[q,y,x]
        f[i+2]=cW; f[i+3]=cN; f[i+4]=cNW; f[i+5]=cNE
        i += 6
    return i

@njit(cache=True)
def klass(f, nact):
    W, N, NW, NE, WW, NN, NNE = f[0], f[1], f[2], f[3], f[4], f[5], f[6]
    dh = abs(W-WW) + abs(N-NW) + abs(NE-N)
    dv = abs(W-NW) + abs(N-NN) + abs(NE-NNE)
    a = dh + dv
    b = 0
    while b < nact-1 and a >= (2 << b): b += 1
    d = 1
    if dv > 2*dh + 4: d = 0
    elif dh > 2*dv + 4: d = 2
    return b*3 + d

@njit(cache=True)
def accum(px, k, qs, nact, XtX, Xty):
    P, h, w = px.shape
    f = np.zeros(32)
    for y in range(h):
        for x in range(w):
            n = feats(px, k, qs, y, x, w, f)
            c = klass(f, nact)
            f[n] = 1.0
            t = px[k, y, x]
            for i in range(n+1):
                Xty[c, i] += f[i]*t
                for j in range(n+1):
                    XtX[c, i, j] += f[i]*f[j]

@njit(cache=True)
def residuals(px, k, qs, nact, Wt, out):
    P, h, w = px.shape
    f = np.zeros(32)
    for y in range(h):
        for x in range(w):
            n = feats(px, k, qs, y, x, w, f)
            c = klass(f, nact)
            f[n] = 1.0
            s = 0.0
            for i in range(n+1): s += Wt[c, i]*f[i]
            p = int(np.floor(s + 0.5)); p = min(max(p, 0), 255)
            out[k, y, x] = (int(px[k, y, x]) - p + 128) & 255

def qsof(k, P):
    return np.arange(k, dtype=np.int64) if P > 1 else np.zeros(0, np.int64)

def fit(ims, nact, lam=1.0):
    Ws = {}
    for k in range(3):
        nf = 8 + 6*k + 1
        XtX = np.zeros((nact*3, nf, nf)); Xty = np.zeros((nact*3, nf))
        for _, a in ims:
            pl, _ = planes_of(a)
            accum(pl.astype(np.int64), k, qsof(k, 3), nact, XtX, Xty)
        W = np.zeros((nact*3, 32))
        for c in range(nact*3):
            W[c, :nf] = np.linalg.solve(XtX[c] + lam*np.eye(nf), Xty[c])
        Ws[k] = W
    return Ws

def apply(a, Ws, nact):
    pl, _ = planes_of(a)
    P = pl.shape[0]
    out = np.empty_like(pl)
    px = pl.astype(np.int64)
    for k in range(P):
        residuals(px, k, qsof(k, P), nact, Ws[k], out)
    return out

def main():
    global D
    D = sys.argv[1].rstrip('/') + '/'
    nact = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    Ws = fit(load('train')[::2], nact)
    for s in ['kodak', 'dev', 'dev_gray']:
        ims = load(s)
        base = [bpsp(med_res(a)) for _, a in ims]
        new = [bpsp(apply(a, Ws, nact)) for _, a in ims]
        print(s, 'med %.4f ls %.4f  %+.2f%%' % (np.mean(base), np.mean(new), 100 * (np.mean(new) / np.mean(base) - 1)))


if __name__ == '__main__':
    main()
