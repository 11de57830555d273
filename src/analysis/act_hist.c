/* act_hist.c — see act_hist.h.
 *
 * Bins, in increasing order of the value x:
 *      0          x < G (G = -0.1701, below GELU's minimum), also NaN
 *      1..400     G <= x < -2^-5       uniform in sqrt(x - G)
 *    401..640     -2^-5 <= x < -2^-20  16 per octave of |x|
 *    641          -2^-20 <= x < 0
 *    642          x == 0
 *    643          0 < x < 2^-20
 *    644..779     2^-20 <= x < 2^-3    8 per octave
 *    780..971     2^-3 <= x < 8        32 per octave
 *    972..1019    8 <= x < 64          16 per octave
 *   1020..1022    64 <= x < 512        1 per octave
 *   1023          x >= 512
 * "Per octave" bins are uniform in the float's bit pattern (exponent plus
 * mantissa: a piecewise-linear log2), so a bin is one integer operation on
 * the bits, exact and the same on every machine. The sizes were chosen by
 * measurement on the demo model: the AUROC bound of concept rankings comes
 * mostly from the small negative values (many tokens sit just below zero)
 * and from GELU's minimum, so those regions get most bins. */
#include "act_hist.h"

#include <math.h>
#include <string.h>

#define G_LO (-0.1701f)
#define SPIKE_BINS 400
#define MANT 23 /* mantissa bits: one octave is 1 << MANT in the bit pattern */

static inline uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* bit patterns of the region edges (positive powers of two) */
#define POW2(e) ((uint32_t)(127 + (e)) << MANT)
#define OCT_MASK ((1u << MANT) - 1)

/* A logarithmic region: [2^e0, 2^e1) in |x|, k bins per octave, first bin b0. */
typedef struct {
    int e0, e1, k, b0;
} LogRegion;

static const LogRegion NEG = {-20, -5, 16, 401}; /* read from -2^-5 toward 0 */
static const LogRegion POS[] = {{-20, -3, 8, 644}, {-3, 3, 32, 780}, {3, 6, 16, 972}, {6, 9, 1, 1020}};

/* sqrt(-2^-5 - G), the spike region's extent in its coordinate */
static float spike_extent(void) { return sqrtf(-0.03125f - G_LO); }

static int log_bin(uint32_t off, int k, int b0, double *f) {
    uint64_t c = (uint64_t)off * (uint64_t)k;
    *f = (double)(c & OCT_MASK) / (double)(1u << MANT);
    return b0 + (int)(c >> MANT);
}

int act_hist_locate(float x, double *frac) {
    double f = 0.5;
    int b;
    uint32_t u = bits_of(x);
    if (x > 0) {
        if (u < POW2(-20)) {
            b = 643;
            f = (double)x / 0x1p-20;
        } else {
            b = ACT_HIST_BINS - 1; /* >= 512 */
            for (int r = 0; r < 4; r++)
                if (u < POW2(POS[r].e1)) {
                    b = log_bin(u - POW2(POS[r].e0), POS[r].k, POS[r].b0, &f);
                    break;
                }
        }
    } else if (x == 0) {
        b = ACT_HIST_ZERO_BIN;
    } else if (x < 0) {
        uint32_t a = u & 0x7fffffffu; /* |x| */
        if (a <= POW2(-20)) {
            b = 641;
            f = 1.0 + (double)x / 0x1p-20; /* -2^-20 -> 0, toward 0 -> 1 */
        } else if (a <= POW2(-5)) {
            b = log_bin(POW2(-5) - a, NEG.k, NEG.b0, &f);
        } else if (x >= G_LO) {
            float s = sqrtf(x - G_LO) * ((float)SPIKE_BINS / spike_extent());
            int k = (int)s;
            if (k > SPIKE_BINS - 1) k = SPIKE_BINS - 1;
            b = 1 + k;
            f = (double)s - k;
            if (f > 1) f = 1;
        } else {
            b = 0;
        }
    } else {
        b = 0; /* NaN */
    }
    if (frac) *frac = f;
    return b;
}

int act_hist_bin(float x) { return act_hist_locate(x, NULL); }

/* act_hist_bins: the same bins as act_hist_locate, without a branch, so
 * that the recorder bins a row of 16 neurons in a few vector instructions
 * (the branchy scalar version mispredicted on every other activation and
 * took ~3% of `probe record`). Every region is a compare on the magnitude's
 * bits and a shift (the per-octave regions have 2^k bins, so c >> MANT of
 * off * 2^k is off >> (MANT - k)); the spike region takes the same float
 * operations as act_hist_locate. check_act_hist compares the two over every
 * float bit pattern near the region edges and a stride of the rest. */
#define G_MAG_BITS bits_of(-G_LO) /* the bits of |G_LO|; folded to a constant */

/* (unused where neither vector path is compiled: a build without AVX2) */
__attribute__((unused)) static float spike_scale(void) { return (float)SPIKE_BINS / spike_extent(); }

#if defined(__AVX512F__)
#include <immintrin.h>
static void bins_avx512(const float *x, int32_t *out, __m512 scale) {
    const __m512 v = _mm512_loadu_ps(x);
    const __m512i u = _mm512_castps_si512(v);
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
#define LT(e) _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32((int)POW2(e)))
#define LOG(e0, sh, b0) \
    _mm512_add_epi32(_mm512_set1_epi32(b0), _mm512_srli_epi32(_mm512_sub_epi32(a, _mm512_set1_epi32((int)POW2(e0))), sh))
    __m512i p = _mm512_set1_epi32(ACT_HIST_BINS - 1);
    p = _mm512_mask_mov_epi32(p, LT(9), LOG(6, MANT, 1020));
    p = _mm512_mask_mov_epi32(p, LT(6), LOG(3, MANT - 4, 972));
    p = _mm512_mask_mov_epi32(p, LT(3), LOG(-3, MANT - 5, 780));
    p = _mm512_mask_mov_epi32(p, LT(-3), LOG(-20, MANT - 3, 644));
    p = _mm512_mask_mov_epi32(p, LT(-20), _mm512_set1_epi32(643));
    __m512 d = _mm512_max_ps(_mm512_sub_ps(v, _mm512_set1_ps(G_LO)), _mm512_setzero_ps());
    __m512 s = _mm512_min_ps(_mm512_mul_ps(_mm512_sqrt_ps(d), scale), _mm512_set1_ps(SPIKE_BINS - 1));
    __m512i q = _mm512_maskz_add_epi32(_mm512_cmple_epu32_mask(a, _mm512_set1_epi32((int)G_MAG_BITS)),
                                       _mm512_cvttps_epi32(s), _mm512_set1_epi32(1));
    q = _mm512_mask_mov_epi32(q, _mm512_cmple_epu32_mask(a, _mm512_set1_epi32((int)POW2(-5))),
                              _mm512_add_epi32(_mm512_set1_epi32(401),
                                               _mm512_srli_epi32(_mm512_sub_epi32(_mm512_set1_epi32((int)POW2(-5)), a),
                                                                 MANT - 4)));
    q = _mm512_mask_mov_epi32(q, _mm512_cmple_epu32_mask(a, _mm512_set1_epi32((int)POW2(-20))),
                              _mm512_set1_epi32(641));
    __m512i b = _mm512_mask_mov_epi32(p, _mm512_cmplt_epi32_mask(u, _mm512_setzero_si512()), q);
    b = _mm512_mask_mov_epi32(b, _mm512_cmpeq_epi32_mask(a, _mm512_setzero_si512()),
                              _mm512_set1_epi32(ACT_HIST_ZERO_BIN));
    b = _mm512_mask_mov_epi32(b, _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7f800000)), _mm512_setzero_si512());
    _mm512_storeu_si512(out, b);
#undef LT
#undef LOG
}
#elif defined(__AVX2__)
#include <immintrin.h>
/* a has no sign bit, so signed compares order it as unsigned */
static void bins_avx2(const float *x, int32_t *out, __m256 scale) {
    const __m256 v = _mm256_loadu_ps(x);
    const __m256i u = _mm256_castps_si256(v);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
#define LT(e) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)POW2(e)), a)
#define LE(c) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(c) + 1), a)
#define SEL(m, y, z) _mm256_blendv_epi8(z, y, m) /* m ? y : z */
#define LOG(e0, sh, b0) \
    _mm256_add_epi32(_mm256_set1_epi32(b0), _mm256_srli_epi32(_mm256_sub_epi32(a, _mm256_set1_epi32((int)POW2(e0))), sh))
    __m256i p = _mm256_set1_epi32(ACT_HIST_BINS - 1);
    p = SEL(LT(9), LOG(6, MANT, 1020), p);
    p = SEL(LT(6), LOG(3, MANT - 4, 972), p);
    p = SEL(LT(3), LOG(-3, MANT - 5, 780), p);
    p = SEL(LT(-3), LOG(-20, MANT - 3, 644), p);
    p = SEL(LT(-20), _mm256_set1_epi32(643), p);
    __m256 d = _mm256_max_ps(_mm256_sub_ps(v, _mm256_set1_ps(G_LO)), _mm256_setzero_ps());
    __m256 s = _mm256_min_ps(_mm256_mul_ps(_mm256_sqrt_ps(d), scale), _mm256_set1_ps(SPIKE_BINS - 1));
    __m256i q = _mm256_and_si256(LE(G_MAG_BITS), _mm256_add_epi32(_mm256_cvttps_epi32(s), _mm256_set1_epi32(1)));
    q = SEL(LE(POW2(-5)),
            _mm256_add_epi32(_mm256_set1_epi32(401),
                             _mm256_srli_epi32(_mm256_sub_epi32(_mm256_set1_epi32((int)POW2(-5)), a), MANT - 4)),
            q);
    q = SEL(LE(POW2(-20)), _mm256_set1_epi32(641), q);
    __m256i b = SEL(_mm256_cmpgt_epi32(_mm256_setzero_si256(), u), q, p);
    b = SEL(_mm256_cmpeq_epi32(a, _mm256_setzero_si256()), _mm256_set1_epi32(ACT_HIST_ZERO_BIN), b);
    b = SEL(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256(), b);
    _mm256_storeu_si256((__m256i *)out, b);
#undef LT
#undef LE
#undef SEL
#undef LOG
}
#endif

void act_hist_bins(const float *x, int n, int32_t *out) {
    int i = 0;
#if defined(__AVX512F__)
    const __m512 scale = _mm512_set1_ps(spike_scale());
    for (; i + 16 <= n; i += 16) bins_avx512(x + i, out + i, scale);
#elif defined(__AVX2__)
    const __m256 scale = _mm256_set1_ps(spike_scale());
    for (; i + 8 <= n; i += 8) bins_avx2(x + i, out + i, scale);
#endif
    for (; i < n; i++) out[i] = act_hist_bin(x[i]);
}

static double from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static uint32_t ceil_div(uint64_t a, uint64_t d) { return (uint32_t)((a + d - 1) / d); }

/* The lower edge of bin b (b in 0..ACT_HIST_BINS): the smallest value in it. */
static double lower_edge(int b) {
    if (b <= 0) return -INFINITY;
    if (b <= SPIKE_BINS) {
        double s = (double)spike_extent() * (b - 1) / SPIKE_BINS;
        return (double)G_LO + s * s;
    }
    if (b < 641) return -from_bits(POW2(-5) - ceil_div((uint64_t)(b - NEG.b0) << MANT, NEG.k));
    if (b == 641) return -0x1p-20;
    if (b == 642 || b == 643) return 0;
    for (int r = 3; r >= 0; r--)
        if (b >= POS[r].b0) {
            int k = b - POS[r].b0;
            if (k < (POS[r].e1 - POS[r].e0) * POS[r].k)
                return from_bits(POW2(POS[r].e0) + ceil_div((uint64_t)k << MANT, POS[r].k));
            return b == ACT_HIST_BINS - 1 ? 512.0 : INFINITY;
        }
    return INFINITY;
}

void act_hist_edges(int b, double *lo, double *hi) {
    *lo = lower_edge(b);
    *hi = b == ACT_HIST_ZERO_BIN ? 0 : lower_edge(b + 1);
}
