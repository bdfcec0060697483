/* Adam's update in one pass, instantiated per element type and instruction set.
 *
 * Included by kernels.c with REAL and SUFFIX defined. The operations are those
 * of distkeras/optimizers/adam.py's NumPy update, in the same order and each
 * rounded to REAL (no fused multiply-adds: kernels.c turns contraction off), so
 * the result is bitwise what the NumPy calls give. */

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

/* p, m, v (and vhat, NULL without AMSGrad) updated in place from g; b1c = 1 - beta_1,
 * b2c = 1 - beta_2, alpha the step's bias-corrected learning rate. */
void FN(adam_update)(int64_t n, REAL *restrict p, const REAL *restrict g, REAL *restrict m,
                     REAL *restrict v, REAL *restrict vhat, REAL b1c, REAL b2c, REAL eps,
                     REAL alpha) {
    if (vhat) {
        _Pragma("omp simd") for (int64_t k = 0; k < n; k++) {
            REAL gk = g[k];
            REAL mk = m[k] + (gk - m[k]) * b1c;
            REAL vk = v[k] + (gk * gk - v[k]) * b2c;
            REAL h = vhat[k];
            h = (h > vk || h != h) ? h : vk; /* np.maximum: NaN from either side */
            m[k] = mk;
            v[k] = vk;
            vhat[k] = h;
            p[k] = p[k] - (mk * alpha) / (SQRT(h) + eps);
        }
    } else {
        _Pragma("omp simd") for (int64_t k = 0; k < n; k++) {
            REAL gk = g[k];
            REAL mk = m[k] + (gk - m[k]) * b1c;
            REAL vk = v[k] + (gk * gk - v[k]) * b2c;
            m[k] = mk;
            v[k] = vk;
            p[k] = p[k] - (mk * alpha) / (SQRT(vk) + eps);
        }
    }
}

#undef FN
#undef CAT
#undef CAT2
#undef SUFFIX
