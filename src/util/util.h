/* util.h — small shared helpers: error messages, files, time, hashing, parsing.
 *
 * Error convention for the whole project: library functions return 0 on
 * success and -1 on failure, and on failure fill a caller-provided buffer
 * `char err[PROBE_ERR_LEN]` with one lower-case line, the problem first and
 * the subject quoted:  cannot open 'corpus.txt': No such file or directory
 * Only main() and the command layer choose exit codes (PROBE_EXIT_*). */
#ifndef PROBE_UTIL_H
#define PROBE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_ERR_LEN 512
#define PROBE_EXIT_OK 0
#define PROBE_EXIT_RUNTIME 1 /* bad input file, I/O failure, ... */
#define PROBE_EXIT_USAGE 2   /* unknown option, bad option value */

/* printf-style: writes the message into err (PROBE_ERR_LEN bytes). Returns -1
 * so that `return err_set(err, ...);` reads naturally. err may be NULL. */
int err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 when s holds no control byte (< 0x20, 0x7f): safe inside a one-line
 * message. For text read from an untrusted file or database. */
int text_printable(const char *s);

/* Reads a whole file into a NUL-terminated malloc'd buffer. "-" reads stdin.
 * On success *data (caller frees) and *len are set. */
int file_read_all(const char *path, char **data, size_t *len, char *err);

/* Monotonic wall clock in seconds. */
double now_sec(void);

/* 64-bit FNV-1a, chained through `seed` (use PROBE_HASH_SEED to start). */
#define PROBE_HASH_SEED 0xcbf29ce484222325ULL
uint64_t hash64(const void *data, size_t len, uint64_t seed);

/* A model or corpus checksum as the database stores it and `probe info`
 * prints it: 16 lower-case hex digits. */
#define PROBE_CHECKSUM_HEX 17
void checksum_hex(uint64_t v, char out[PROBE_CHECKSUM_HEX]);

/* The model directory a command uses: `opt` (from --model) when not NULL,
 * else $PROBE_MODEL when set and non-empty, else the bundled default
 * (models/demo next to the probe binary). Never NULL. */
const char *model_dir_resolve(const char *opt);
/* The path of `rel` in the repository of the running binary (the folder of
 * ./probe, or the parent of the build folder holding it): 0, or -1 when it
 * cannot be known or does not fit in cap. Nothing is checked on disk. */
int repo_path(const char *rel, char *out, size_t cap);

/* Strict integer parse of the whole string into [min, max]. */
int parse_long(const char *s, long min, long max, long *out);

/* Prints "probe <command>: <msg>\n" to stderr ("probe: <msg>" before a
 * command is named with error_prefix_set; the command layer does that, see
 * cli.h). */
void print_error(const char *msg);
void error_prefix_set(const char *command);

/* Process pid from /proc: its state letter (*state: 'R', 'S', ..., 'Z' for
 * a zombie, which kill(pid, 0) still finds) and when it started, in Unix
 * seconds (*epoch, from /proc/PID/stat and the boot time in /proc/stat).
 * 0, or -1 when it cannot be told (no such process, no /proc). */
int process_info(long long pid, char *state, double *epoch);

/* Reads the integer environment variable `name` into *out: dflt when unset
 * or empty, else its whole value parsed in [min, max]; anything else is an
 * error naming the variable and the accepted range (PROBE_* variables are
 * validated alike, never silently ignored). */
int env_long(const char *name, long min, long max, long dflt, long *out, char *err);

/* Adds s (any bytes up to a NUL; NULL reads as "") to a cJSON object as a
 * string in its text form (utf8.h), so that printed JSON is valid UTF-8
 * whatever a path, a database value or a token holds. 0, or -1 when out of
 * memory. */
struct cJSON;
int json_add_text(struct cJSON *obj, const char *key, const char *s);
/* Adds key: v to obj when v is finite, else key: null (JSON has no NaN or
 * infinity: an AUROC without a histogram, a rank without triggers). */
void json_add_real(struct cJSON *obj, const char *key, double v);

/* Reads a JSON array of integer token ids from a file ("-" = stdin).
 * *ids is malloc'd (caller frees). */
int ids_read_json(const char *path, int32_t **ids, int *n, char *err);

#endif
