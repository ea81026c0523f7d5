"""Research estimate (not used by the codec): does per-block side information still earn its bytes on top
of the adaptive context model?  The context model of tricodec/context_ref.py (same contexts, tokens,
A+B mixing and count-scheduled adaptation; whole-image lanes) is run twice on ideal code lengths: as
it is, and with table A's context also crossed with an *oracle* 4-level activity class of the symbol's
8x8 block (computed from the true residuals, i.e. the best a VQ-VAE or block-scale side channel could
say at that granularity), charging the classes' static per-image entropy.

    python tools/research_side_info_on_context.py         # needs ../shared/data; ~2 min on 2 cores
    python tools/research_side_info_on_context.py mixing  # tables A, B alone and mixed (~3 min)

Measured 2026-11-25 (dev machine, 2 cores): without 3.0694 kodak / 3.2400 dev; with the oracle side
information 3.0720 / 3.2454 -- it does not pay for itself, so no side channel ships with tric-cx1.
Mixing, kodak / dev mean bpsp; (mix, N0, max shift): table B alone (1, 64, 10) 3.1060 / 3.3094; A alone
(0, 128, 11) 3.1179 / 3.2642; A alone (0, 32, 10) 3.1116 / 3.2614; A+B mixed (2, 64, 10) 3.0745 /
3.2442; A+B mixed (2, 32, 9) 3.0694 / 3.2400 (the shipped schedule).
"""
import numpy as np, glob, sys
from numba import njit
from PIL import Image
from tricodec.predictor_ref import compute_residuals
NT=24
@njit(cache=True)
def tok(u):
    if u<16: return u,0
    n=0; v=u
    while v>1:
        v>>=1; n+=1
    return 16+2*(n-4)+((u>>(n-1))&1), n-1
@njit(cache=True)
def g(res,kk,yy,xx):
    P,H,W=res.shape
    if yy<0 or xx<0 or xx>=W: return 0
    return np.int32(res[kk,yy,xx])-128
@njit(cache=True)
def sgn(v): return (v>0)-(v<0)+1
@njit(cache=True)
def ctxA(res,k,y,x,bintab,L):
    w=g(res,k,y,x-1); n=g(res,k,y-1,x); nw=g(res,k,y-1,x-1); ne=g(res,k,y-1,x+1); ww=g(res,k,y,x-2); nn=g(res,k,y-2,x)
    act=2*abs(w)+2*abs(n)+abs(nw)+abs(ne)+abs(ww)+abs(nn)
    if k>0:
        co=g(res,0,y,x); act+=2*abs(co)+abs(g(res,0,y,x+1))
        if k>1: act+=abs(g(res,1,y,x))
    b=bintab[min(act,len(bintab)-1)]
    c=(b*3+sgn(w))*3+sgn(n)
    if k>0: c=c*3+sgn(g(res,0,y,x))
    return c*4+L[k,y>>3,x>>3]
@njit(cache=True)
def ctxB(res,k,y,x,bt2):
    w=g(res,k,y,x-1); n=g(res,k,y-1,x); nw=g(res,k,y-1,x-1); ne=g(res,k,y-1,x+1)
    a1=bt2[min(abs(w)+abs(n)+abs(nw)+abs(ne),len(bt2)-1)]
    a2=0; s=1
    if k>0:
        co=g(res,0,y,x)
        if k>1: co=co+g(res,1,y,x)
        a2=bt2[min(2*abs(co),len(bt2)-1)]; s=sgn(co)
    return ((a1*12+a2)*3+s)*3+sgn(w+n)
@njit(cache=True)
def upd(c,k,ci,t,rr,Q):
    for i in range(1,NT):
        if i>t: c[k,ci,i]+=(Q-c[k,ci,i])>>rr
        else: c[k,ci,i]-=c[k,ci,i]>>rr
@njit(cache=True)
def rate(cnt,k,ci,N0,cap):
    n=cnt[k,ci]; cnt[k,ci]=n+1
    v=n+N0; lg=0
    while v>1:
        v>>=1; lg+=1
    return min(lg,cap)
@njit(cache=True)
def run(res,bintab,bt2,initA,initB,train,cntA,cntB,mix,N0,cap,L):
    P,H,W=res.shape
    bits=0.0; Q=65536-NT
    cA=initA.copy(); cB=initB.copy()
    nA=np.zeros(initA.shape[:2],np.int32); nB=np.zeros(initB.shape[:2],np.int32)
    for y in range(H):
        for k in range(P):
            for x in range(W):
                a=ctxA(res,k,y,x,bintab,L); b=ctxB(res,k,y,x,bt2)
                r=np.int32(res[k,y,x])-128
                u=2*r if r>=0 else -2*r-1
                t,eb=tok(u)
                if train:
                    cntA[k,a,t]+=1; cntB[k,b,t]+=1; continue
                fA=cA[k,a,t+1]-cA[k,a,t]+1; fB=cB[k,b,t+1]-cB[k,b,t]+1
                if mix==0: f=fA
                elif mix==1: f=fB
                else:
                    lo=(cA[k,a,t]+t+cB[k,b,t]+t)>>1; hi=(cA[k,a,t+1]+t+1+cB[k,b,t+1]+t+1)>>1; f=hi-lo
                bits+=16-np.log2(f)+eb
                upd(cA,k,a,t,rate(nA,k,a,N0,cap),Q); upd(cB,k,b,t,rate(nB,k,b,N0,cap),Q)
    return bits
def planes_of(f):
    im=np.asarray(Image.open(f).convert('RGB')); planes=np.ascontiguousarray(im.transpose(2,0,1)[[1,0,2]])
    return compute_residuals(planes,[-1,0,0])
NB=20
bintab=np.minimum(NB-1,np.floor(np.log2(1+np.arange(4096))*2.5)).astype(np.int64)
bt2=np.minimum(11,np.floor(np.log2(1+np.arange(4096))*1.6)).astype(np.int64)
NCA=NB*27*4; NCB=12*12*9
def tocum(counts):
    Q=65536-NT
    p=(counts+0.5)/(counts+0.5).sum(-1,keepdims=True)
    cf=np.floor(np.cumsum(p,-1)*Q+0.5).astype(np.int64)
    cf=np.concatenate([np.zeros(cf.shape[:2]+(1,),np.int64),cf],-1); cf[...,-1]=Q
    return np.maximum.accumulate(cf,-1)

def levels(r, on):
    P,H,W=r.shape
    a=np.abs(r.astype(np.int32)-128).astype(float)
    hb,wb=-(-H//8),-(-W//8)
    L=np.zeros((P,hb,wb),np.int64)
    if not on: return L, 0.0
    pad=np.zeros((P,hb*8,wb*8)); pad[:,:H,:W]=a
    m=pad.reshape(P,hb,8,wb,8).mean((2,4))
    L=np.digitize(m,[1.5,4,10]).astype(np.int64)
    bits=0.0
    for k in range(P):
        c=np.bincount(L[k].ravel(),minlength=4); p=c[c>0]/c.sum(); bits+=-(c[c>0]*np.log2(p)).sum()
    return L,bits
tr=sorted(glob.glob('../shared/data/train/*.png'))
dev=sorted(glob.glob('../shared/data/dev/*.png')); kod=sorted(glob.glob('../shared/data/kodak/*.png'))
import sys


def side_info_experiment():
    for on in [False, True]:
        cA = np.zeros((3, NCA, NT), np.int64); cB = np.zeros((3, NCB, NT), np.int64)
        for f in tr:
            r = planes_of(f); L, _ = levels(r, on); run(r, bintab, bt2, cA, cB, True, cA, cB, 0, 0, 0, L)
        iA = tocum(cA); iB = tocum(cB)
        o = []
        for files in (kod, dev):
            v = []
            for f in files:
                r = planes_of(f); L, sb = levels(r, on)
                v.append((run(r, bintab, bt2, iA, iB, False, cA, cB, 2, 32, 9, L) + sb) / r.size)
            o.append(np.mean(v))
        print('side info' if on else 'none', 'kodak %.4f dev %.4f' % tuple(o), flush=True)


def mixing_experiment():
    """Tables A and B alone and mixed (mix 0: A, 1: B, 2: average), no side information."""
    cA = np.zeros((3, NCA, NT), np.int64); cB = np.zeros((3, NCB, NT), np.int64)
    for f in tr:
        r = planes_of(f); L, _ = levels(r, False); run(r, bintab, bt2, cA, cB, True, cA, cB, 0, 0, 0, L)
    iA = tocum(cA); iB = tocum(cB)
    sets = [[planes_of(f) for f in files] for files in (kod, dev)]
    for mix, n0, cap in [(1, 64, 10), (0, 128, 11), (0, 32, 10), (2, 64, 10), (2, 32, 9)]:
        o = [np.mean([run(r, bintab, bt2, iA, iB, False, cA, cB, mix, n0, cap, levels(r, False)[0]) / r.size
                      for r in rs]) for rs in sets]
        print(mix, n0, cap, 'kodak %.4f dev %.4f' % tuple(o), flush=True)


if __name__ == "__main__":
    (mixing_experiment if sys.argv[1:] == ["mixing"] else side_info_experiment)()
