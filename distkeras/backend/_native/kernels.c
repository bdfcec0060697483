/* Fused loops of distkeras's LSTM primitive and Adam update (see native.py).
 *
 * NumPy runs a step's elementwise work as a dozen separate ufunc calls; here a
 * step is one pass over its gates plus the recurrent GEMM, which is NumPy's own
 * BLAS (its cblas_?gemm address comes from native.py), so BLAS threading is
 * what NumPy's is. The functions are called through ctypes, which releases the
 * GIL, so the pool thread's block GEMMs run beside them.
 *
 * Adam's update (adam_body.h) is one pass instead of a dozen ufunc calls, with
 * the same roundings.
 *
 * float32 gets its own vectorisable sigmoid and tanh (within 2 ulp of the
 * correctly rounded value; libm's are scalar calls); float64 uses libm's exp
 * and tanh. On x86-64 with GCC the float32 loops are compiled for AVX-512,
 * AVX2 and the baseline, chosen at run time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };

typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                          const float *, int64_t, float, float *, int64_t);
typedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float *, int, const float *,
                          int, float, float *, int);
typedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                          int64_t, const double *, int64_t, double, double *, int64_t);
typedef void (*dgemm32_t)(int, int, int, int, int, int, double, const double *, int,
                          const double *, int, double, double *, int);

/* C = A B + beta C, row-major, no transposes. */
#define CALL_GEMM_T(T64, T32, gemm, int64, M, N, K, A_, lda, B_, ldb, beta, C_, ldc)          \
    do {                                                                                     \
        if (int64)                                                                           \
            ((T64)(gemm))(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, 1, A_, lda, B_, ldb, beta, \
                          C_, ldc);                                                          \
        else                                                                                 \
            ((T32)(gemm))(ROW_MAJOR, NO_TRANS, NO_TRANS, (int)(M), (int)(N), (int)(K), 1, A_, \
                          (int)(lda), B_, (int)(ldb), beta, C_, (int)(ldc));                 \
    } while (0)

/* ---------------------------------------------------------------- float32 */
#define REAL float
#define CALL_GEMM(...) CALL_GEMM_T(sgemm64_t, sgemm32_t, __VA_ARGS__)

/* exp(x) for x in [-87, 88] (NaN stays NaN): Cody-Waite reduction by ln 2 and
 * Cephes's degree-6 polynomial, then the power of two put in the exponent bits. */
#define DEFINE_ACTIVATIONS(S)                                                          \
    static inline float exp_##S(float x) {                                             \
        x = x > 88.0f ? 88.0f : x;                                                     \
        x = x < -87.0f ? -87.0f : x;                                                   \
        float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;              \
        float r = x - n * 0.693359375f;                                                \
        r = r + n * 2.12194440e-4f;                                                    \
        float p = 1.9875691500e-4f;                                                    \
        p = p * r + 1.3981999507e-3f;                                                  \
        p = p * r + 8.3334519073e-3f;                                                  \
        p = p * r + 4.1665795894e-2f;                                                  \
        p = p * r + 1.6666665459e-1f;                                                  \
        p = p * r + 5.0000001201e-1f;                                                  \
        p = p * r * r + r + 1.0f;                                                      \
        int32_t bits = ((int32_t)n + 127) << 23;                                       \
        float scale;                                                                   \
        memcpy(&scale, &bits, sizeof scale);                                           \
        return p * scale;                                                              \
    }                                                                                  \
    static inline float sigmoid_##S(float x) { return 1.0f / (1.0f + exp_##S(-x)); }  \
    /* |x| < 0.4: Taylor series to x^13; else 1 - 2 / (exp(2|x|) + 1). */              \
    static inline float tanh_##S(float x) {                                            \
        float ax = fabsf(x);                                                           \
        float t = 2.0f * ax;                                                           \
        t = t > 40.0f ? 40.0f : t;                                                     \
        float big = 1.0f - 2.0f / (exp_##S(t) + 1.0f);                                 \
        float x2 = ax * ax;                                                            \
        float q = 21844.0f / 6081075.0f;                                               \
        q = q * x2 - 1382.0f / 155925.0f;                                              \
        q = q * x2 + 62.0f / 2835.0f;                                                  \
        q = q * x2 - 17.0f / 315.0f;                                                   \
        q = q * x2 + 2.0f / 15.0f;                                                     \
        q = q * x2 - 1.0f / 3.0f;                                                      \
        float small = ax + ax * x2 * q;                                                \
        return copysignf(ax < 0.4f ? small : big, x);                                  \
    }

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MULTI_ARCH 1
#pragma GCC push_options
#pragma GCC target("arch=skylake-avx512")
DEFINE_ACTIVATIONS(avx512)
#define SIGMOID sigmoid_avx512
#define TANH tanh_avx512
#define SUFFIX _f32_avx512
#include "lstm_body.h"
#undef SIGMOID
#undef TANH
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=haswell")
DEFINE_ACTIVATIONS(avx2)
#define SIGMOID sigmoid_avx2
#define TANH tanh_avx2
#define SUFFIX _f32_avx2
#include "lstm_body.h"
#undef SIGMOID
#undef TANH
#pragma GCC pop_options
#endif

DEFINE_ACTIVATIONS(base)
#define SIGMOID sigmoid_base
#define TANH tanh_base
#define SUFFIX _f32_base
#include "lstm_body.h"
#undef SIGMOID
#undef TANH
#undef CALL_GEMM
#undef REAL

/* ---------------------------------------------------------------- float64 */
#define REAL double
#define CALL_GEMM(...) CALL_GEMM_T(dgemm64_t, dgemm32_t, __VA_ARGS__)
#define SIGMOID(x) (1.0 / (1.0 + exp(-(x))))
#define TANH(x) tanh(x)
#define SUFFIX _f64
#include "lstm_body.h"
#undef SIGMOID
#undef TANH
#undef CALL_GEMM
#undef REAL

/* ---------------------------------------------------------------- Adam */
/* Each operation rounded on its own, as NumPy's ufuncs are: no contraction. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#define SQRT sqrtf
#define REAL float
#ifdef MULTI_ARCH
#pragma GCC push_options
#pragma GCC target("arch=skylake-avx512")
#define SUFFIX _f32_avx512
#include "adam_body.h"
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=haswell")
#define SUFFIX _f32_avx2
#include "adam_body.h"
#pragma GCC pop_options
#endif
#define SUFFIX _f32_base
#include "adam_body.h"
#undef REAL
#undef SQRT
#define SQRT sqrt
#define REAL double
#define SUFFIX _f64
#include "adam_body.h"
#undef REAL
#undef SQRT
#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

/* ---------------------------------------------------------------- dispatch */
/* The instruction set the float32 loops use: 2 AVX-512, 1 AVX2 + FMA, 0 baseline. */
int64_t distkeras_isa(void) {
#ifdef MULTI_ARCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* The module exists so that setuptools builds and installs this file; its
 * functions are called through ctypes (distkeras/backend/native.py). */
static struct PyModuleDef kernels_module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&kernels_module); }
