/* hist_codec.h — a histogram of counts as bytes: the form the recorder's
 * saved state and the database's neuron_histograms.counts hold.
 *
 *   uint8_t buf[HIST_PACKED_MAX(1024)];
 *   size_t n = hist_blob(counts, 1024, buf);        // what is stored
 *   hist_unblob(buf, n, counts, 1024);              // 0, or -1: malformed
 *
 * Packed: varint n_nonzero, then per nonzero bin, in increasing order,
 * varint (empty bins skipped since the previous one), varint count.
 * Varints: 7 bits a byte, low first, high bit = more. A histogram has
 * mostly empty bins and small counts: about 2 bytes a used bin.
 *
 * Stored (a blob): packed when that is shorter than the dense form, else
 * dense: n_bins little-endian uint32 counts (every probe before schema
 * version 12 stored that). The length tells them apart: only the dense form
 * is 4 * n_bins bytes long. */
#ifndef PROBE_HIST_CODEC_H
#define PROBE_HIST_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* the longest packed form: a 5-byte n_nonzero, 5-byte gaps and counts
 * (for n_bins <= 16384 at most 3 + 7 n_bins bytes are ever used) */
#define HIST_PACKED_MAX(n_bins) (5 + (size_t)(n_bins) * 10)

/* Packs counts[0..n_bins) into out (HIST_PACKED_MAX bytes); its length. */
size_t hist_pack(const uint32_t *counts, int n_bins, uint8_t *out);
/* Reads one packed histogram from [*p, end) into counts[0..n_bins) and
 * advances *p. 0, or -1 when it is malformed (runs past end, a zero count,
 * a bin past the last, a varint over 32 bits). */
int hist_unpack(const uint8_t **p, const uint8_t *end, uint32_t *counts, int n_bins);

/* The stored form into out (4 * n_bins bytes at most); its length. */
size_t hist_blob(const uint32_t *counts, int n_bins, uint8_t *out);
/* counts[0..n_bins) from a stored blob of len bytes: 0, or -1 when it is
 * neither form (a database file is untrusted input). */
int hist_unblob(const void *blob, size_t len, uint32_t *counts, int n_bins);

#endif
