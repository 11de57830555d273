/* fp16.h — IEEE 754 binary16 <-> binary32, the one implementation (the
 * loader reads F16 checkpoints, the recorder writes fp16 vectors, tests read
 * them back). Exact for every binary16 input; f32_to_f16 rounds to nearest
 * even, overflows to inf, keeps NaN a NaN. */
#ifndef PROBE_FP16_H
#define PROBE_FP16_H

#include <stdint.h>

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

#endif
