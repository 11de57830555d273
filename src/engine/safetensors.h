/* safetensors.h — a validating reader of Hugging Face .safetensors files.
 *
 *   SafeTensors *st = st_open("model.safetensors", err);
 *   const StTensor *t = st_find(st, "h.0.mlp.c_fc.weight");
 *   ... t->data points into the read-only mmap of the file ...
 *   st_close(st);
 *
 * The file is mmap'd read-only. st_open validates everything before use:
 * the 8-byte little-endian header length, that the header lies inside the
 * file, the header JSON (cJSON), every tensor's dtype, shape and byte range
 * (data_offsets inside the data section, size == product(shape) * dtype
 * size, no two tensors overlapping), and the "__metadata__" entry (string
 * map, ignored). Any violation is a one-line error naming the file and the
 * tensor. Ownership: the SafeTensors owns the map and the tensor table. */
#ifndef PROBE_SAFETENSORS_H
#define PROBE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F16, ST_BF16, ST_OTHER } StDtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;              /* tensor key, as in the file */
    StDtype dtype;
    char dtype_name[16];     /* as in the header, for error messages */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;        /* inside the mmap; not necessarily 4-byte aligned */
    size_t nbytes;
} StTensor;

typedef struct SafeTensors SafeTensors;

SafeTensors *st_open(const char *path, char *err);
void st_close(SafeTensors *st);                /* accepts NULL */
const StTensor *st_find(const SafeTensors *st, const char *name); /* NULL if absent */
int st_count(const SafeTensors *st);
const StTensor *st_at(const SafeTensors *st, int i);
const char *st_path(const SafeTensors *st);
size_t st_file_size(const SafeTensors *st);

/* Copies n bytes of the file, starting at `at` (an address inside the
 * mapping, e.g. a tensor's data), into dst by reading the file: the
 * mapping's pages are not touched, so they do not become resident. */
int st_read(const SafeTensors *st, const void *at, size_t n, void *dst, char *err);

/* Converts n elements of an F16 or BF16 (or F32) tensor's data to float. */
void st_to_f32(StDtype dt, const void *src, float *dst, size_t n);

#endif
