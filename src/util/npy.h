/* npy.h — write float32 arrays as NumPy .npy files (format version 1.0).
 * The file is written to PATH.tmp and renamed, so a reader never sees a
 * half-written array. */
#ifndef PROBE_NPY_H
#define PROBE_NPY_H

#include <stdint.h>

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, char *err);

#endif
