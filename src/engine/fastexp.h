/* fastexp.h — exp() without calls or branches, so that loops over it
 * vectorise (libm's exp is correct but scalar, and it dominated the softmax
 * of attention and the vocabulary-wide sums of the losses). The one
 * implementation, in the two precisions the engine needs: float for the
 * forward pass (attention's softmax, GELU), double for losses and KL over a
 * vocabulary. Internal to the engine (kernels.c, logits.c). */
#ifndef PROBE_FASTEXP_H
#define PROBE_FASTEXP_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x in about [-87, 88], written without calls or branches so
 * that loops over it vectorise: x = n*ln2 + r, exp(r) by a degree-6
 * polynomial on |r| <= ln2/2, 2^n built in the exponent bits. Relative
 * error about 2e-7 (a few ulp), well inside the 1e-4 agreement target. */
static inline float exp_f32(float x) {
    /* clamped so that the float -> int conversion below always sees a
     * number in range: a NaN takes the lower bound here and is given back
     * as NaN at the end (no undefined behaviour, and NaN still shows) */
    float c = x > -87.0f ? x : -87.0f;
    c = c < 88.0f ? c : 88.0f;
    /* round to nearest by the 1.5 * 2^23 trick (vectorises, unlike roundf) */
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = c - n * 0.693359375f + n * 2.12194440e-4f; /* Cody-Waite ln2 split */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; uint32_t i; } scale = {.i = (uint32_t)((int32_t)n + 127) << 23};
    float y = p * scale.f;
    return x == x ? y : x;
}

/* exp(x) for x <= 0, in double, without calls or branches so that loops
 * over it vectorise: x = k*ln2 + r with |r| <= ln2/2, exp(r) by its Taylor
 * series to degree 13 (truncation < 2e-16 relative), 2^k built in the
 * exponent bits (k is rounded by the 1.5 * 2^52 trick: t's low mantissa
 * bits hold k, in two's complement). Arguments below -700 are clamped (exp(-700) ~ 1e-304, far
 * below anything a sum of probabilities can see). libm's exp is correct
 * but not vectorised, and it dominated the run time here. */
static inline double exp_f64_le0(double x) {
    x = x < -700.0 ? -700.0 : x;
    double t = x * 1.4426950408889634 + 0x1.8p52;
    double k = t - 0x1.8p52;
    double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023) << 52; /* 2^k: (k + 1023) in the exponent field (unsigned: wraps) */
    double two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return p * two_k;
}

#endif
