/* The LSTM time loop, one instantiation per element type and instruction set.
 *
 * Included by kernels.c with REAL (float or double), SUFFIX (the function-name
 * suffix), GEMM_T (the BLAS gemm type) and the activations SIGMOID / TANH
 * defined. Layouts are feature-major, as in distkeras/backend/lstm.py: a step's
 * gates are (4U, B) in the order o, i, f, c~; states are (U, B).
 */

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

/* Steps t0 <= t < t1 of the forward. A[t] holds the input projection plus bias
 * (pre-activations without the recurrent term) and receives the gate
 * activations; H (T+1, U, B) the hidden states with H[0] set; C and TC (T, U, B)
 * the cell states and their tanh; keep (T, B) 1 for a taken step, 0 for a
 * masked one (NULL: none masked). */
void FN(lstm_forward)(int64_t t0, int64_t t1, int64_t U, int64_t B, REAL *A, const REAL *rk_t,
                      REAL *H, REAL *C, REAL *TC, const REAL *c0, const REAL *keep, void *gemm,
                      int64_t int64) {
    const int64_t UB = U * B;
    for (int64_t t = t0; t < t1; t++) {
        REAL *a = A + t * 4 * UB;
        const REAL *hp = H + t * UB;
        REAL *restrict hn = H + (t + 1) * UB;
        const REAL *cp = t ? C + (t - 1) * UB : c0;
        REAL *restrict ct = C + t * UB;
        REAL *restrict tc = TC + t * UB;
        CALL_GEMM(gemm, int64, 4 * U, B, U, rk_t, U, hp, B, 1, a, B);
        const REAL *kp = keep ? keep + t * B : NULL;
        for (int64_t u = 0; u < U; u++) {
            const int64_t o = u * B;
            REAL *restrict ao = a + o, *restrict ai = a + UB + o;
            REAL *restrict af = a + 2 * UB + o, *restrict ag = a + 3 * UB + o;
            if (kp) {
                _Pragma("omp simd") for (int64_t b = 0; b < B; b++) {
                    REAL so = SIGMOID(ao[b]), si = SIGMOID(ai[b]), sf = SIGMOID(af[b]);
                    REAL sg = TANH(ag[b]);
                    ao[b] = so;
                    ai[b] = si;
                    af[b] = sf;
                    ag[b] = sg;
                    REAL c = sf * cp[o + b] + si * sg;
                    c = kp[b] != 0 ? c : cp[o + b];
                    REAL th = TANH(c);
                    ct[o + b] = c;
                    tc[o + b] = th;
                    hn[o + b] = kp[b] != 0 ? so * th : hp[o + b];
                }
            } else {
                _Pragma("omp simd") for (int64_t b = 0; b < B; b++) {
                    REAL so = SIGMOID(ao[b]), si = SIGMOID(ai[b]), sf = SIGMOID(af[b]);
                    REAL sg = TANH(ag[b]);
                    ao[b] = so;
                    ai[b] = si;
                    af[b] = sf;
                    ag[b] = sg;
                    REAL c = sf * cp[o + b] + si * sg;
                    REAL th = TANH(c);
                    ct[o + b] = c;
                    tc[o + b] = th;
                    hn[o + b] = so * th;
                }
            }
        }
    }
}

/* Steps t1 > t >= t0 of the backward (backpropagation through time). dh and dc
 * (U, B) hold the gradients of the states after step t1 - 1 and receive those
 * before step t0; work is (2, U, B) of scratch. gH (T, U, B) is the gradient
 * of the per-step outputs (NULL: only the last states were used). dZ[t] (4U, B)
 * receives dL/d(pre-activations) of step t; rk (U, 4U) is the recurrent kernel
 * in internal gate order. */
void FN(lstm_backward)(int64_t t0, int64_t t1, int64_t U, int64_t B, const REAL *A,
                       const REAL *C, const REAL *TC, const REAL *c0, const REAL *keep,
                       const REAL *gH, const REAL *rk, REAL *dZ, REAL *dh, REAL *dc, REAL *work,
                       void *gemm, int64_t int64) {
    const int64_t UB = U * B;
    REAL *h_cur = dh, *c_cur = dc;
    REAL *h_alt = work, *c_alt = work + UB;
    for (int64_t t = t1 - 1; t >= t0; t--) {
        const REAL *a = A + t * 4 * UB;
        const REAL *cp = t ? C + (t - 1) * UB : c0;
        const REAL *tct = TC + t * UB;
        const REAL *g = gH ? gH + t * UB : NULL;
        const REAL *kp = keep ? keep + t * B : NULL;
        REAL *z = dZ + t * 4 * UB;
        for (int64_t u = 0; u < U; u++) {
            const int64_t o = u * B;
            const REAL *restrict ao = a + o, *restrict ai = a + UB + o;
            const REAL *restrict af = a + 2 * UB + o, *restrict ag = a + 3 * UB + o;
            const REAL *restrict th = tct + o, *restrict cpo = cp + o;
            REAL *restrict zo = z + o, *restrict zi = z + UB + o;
            REAL *restrict zf = z + 2 * UB + o, *restrict zg = z + 3 * UB + o;
            REAL *restrict hc = h_cur + o, *restrict cc = c_cur + o, *restrict cn = c_alt + o;
            _Pragma("omp simd") for (int64_t b = 0; b < B; b++) {
                REAL h = g ? hc[b] + g[o + b] : hc[b];
                REAL go = ao[b], gi = ai[b], gf = af[b], gg = ag[b], tc = th[b];
                REAL dct = h * (go * (1 - tc * tc)) + cc[b];
                REAL m = kp ? kp[b] : 1;
                zo[b] = m * (h * ((1 - go) * go * tc));
                zi[b] = m * (dct * ((1 - gi) * gi * gg));
                zf[b] = m * (dct * ((1 - gf) * gf * cpo[b]));
                zg[b] = m * (dct * ((1 - gg * gg) * gi));
                cn[b] = m != 0 ? dct * gf : cc[b];
                hc[b] = h;
            }
        }
        CALL_GEMM(gemm, int64, U, B, 4 * U, rk, 4 * U, z, B, 0, h_alt, B);
        if (kp) {
            for (int64_t u = 0; u < U; u++)
                for (int64_t b = 0; b < B; b++)
                    if (kp[b] == 0) h_alt[u * B + b] = h_cur[u * B + b];
        }
        REAL *s = h_cur;
        h_cur = h_alt;
        h_alt = s;
        s = c_cur;
        c_cur = c_alt;
        c_alt = s;
    }
    if (h_cur != dh) memcpy(dh, h_cur, UB * sizeof(REAL));
    if (c_cur != dc) memcpy(dc, c_cur, UB * sizeof(REAL));
}

#undef FN
#undef CAT
#undef CAT2
#undef SUFFIX
