/* cli.h — what every command shares: the error prefix, usage errors, the
 * option parser and the common options' parsers. One convention for all of
 * them:
 *
 *   probe record: cannot open 'corpus.txt': No such file or directory
 *   probe top-neurons: --layer must be a layer number (see probe top-neurons --help)
 *
 * i.e. "probe <command>: " then one lower-case line, the problem first and
 * the subject quoted; usage errors add the --help pointer and exit with
 * PROBE_EXIT_USAGE (2), runtime errors with PROBE_EXIT_RUNTIME (1).
 * main() names the running command once (cli_set_command); every function
 * below uses that name.
 *
 * A command describes its options as a table and hands argv to cli_parse:
 *
 *   long top = 10;
 *   int json = 0;
 *   const char *model = NULL;
 *   const CliOption opts[] = {CLI_OPT_COUNT("top", &top, 1, 1000), CLI_OPT_SET("json", &json),
 *                             CLI_OPT_STRING("model", &model), CLI_OPT_END};
 *   CliArgs args;
 *   int rc = cli_parse(argc, argv, usage_text, opts, &args);
 *   if (rc >= 0) return rc;                   // --help, or a usage error already printed
 *   if (args.n != 1) return cli_usage_error("give exactly one TEXT argument");
 */
#ifndef PROBE_CLI_H
#define PROBE_CLI_H

#include "corpus.h"
#include "neuron_query.h"

/* The command being run ("record", ...); NULL before main() names one. */
void cli_set_command(const char *name);
const char *cli_command(void);

/* "probe <command>: <message>" on stderr; returns `code`. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "probe <command>: <message> (see probe <command> --help)"; returns
 * PROBE_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* For getopt_long's '?' / ':' result: names the option it stopped at. */
int cli_bad_option(char **argv);

/* For a positional argument a command does not take. */
int cli_extra_argument(const char *arg);

/* Prints the usage text on stdout; returns PROBE_EXIT_OK. */
int cli_help(const char *usage_text);

/* A loss figure with its significant digits into buf: 4 decimals while
 * that keeps two of them, else scientific notation (-4.90e-05, never
 * -0.0000); plus: always a sign. Returns buf. */
const char *cli_small(char *buf, size_t cap, double x, int plus);

/* Parsers of the options several commands share. Each returns 0 and sets
 * *out, or prints the usage error and returns -1 (the caller returns
 * PROBE_EXIT_USAGE). Ranges against a model or a run are checked later,
 * where the model or run is known. */
int cli_parse_layer(const char *arg, long *out);           /* --layer L: 0.. */
int cli_parse_run(const char *arg, long *out);             /* --run ID: 1.. */
int cli_parse_split(const char *arg, SplitMode *out);      /* --split paragraph|line|file */
int cli_parse_count(const char *opt, const char *arg, long min, long max, long *out); /* any integer option */

/* ---- the option parser ------------------------------------------------------------------------------------- */

/* What an option does with its argument, and the type `dest` points to. */
typedef enum {
    CLI_STRING, /* const char *: the argument as given */
    CLI_SET,    /* int: 1 (no argument) */
    CLI_CLEAR,  /* int: 0 (no argument: --no-bos, --no-color) */
    CLI_COUNT,  /* long: an integer in min..max (cli_parse_count, named --NAME) */
    CLI_RUN,    /* long: cli_parse_run */
    CLI_LAYER,  /* long: cli_parse_layer */
    CLI_SPLIT,  /* SplitMode: cli_parse_split */
    CLI_CALL,   /* anything: call(argument, dest) returns 0, or -1 after printing the usage error */
    CLI_HELP    /* prints the usage text: cli_parse adds --help to every table; list it only to give it a letter */
} CliKind;

typedef struct {
    const char *name;                         /* the long option without "--"; NULL ends a table */
    CliKind kind;
    void *dest;                               /* where the value goes, of the kind's type */
    long min, max;                            /* CLI_COUNT's range */
    int (*call)(const char *arg, void *dest); /* CLI_CALL's parser */
    char letter;                              /* a one-letter form as well (tokenize's -h), or 0 */
} CliOption;

/* Table entries; the macros check that dest points to the type its kind
 * writes (a mismatch is a compiler warning, an error under CI=1). */
#define CLI_DEST_(T, p) ((void *)(1 ? (p) : (T *)0))
#define CLI_OPT_STRING(name, p) {name, CLI_STRING, CLI_DEST_(const char *, p), 0, 0, NULL, 0}
#define CLI_OPT_SET(name, p) {name, CLI_SET, CLI_DEST_(int, p), 0, 0, NULL, 0}
#define CLI_OPT_CLEAR(name, p) {name, CLI_CLEAR, CLI_DEST_(int, p), 0, 0, NULL, 0}
#define CLI_OPT_COUNT(name, p, min, max) {name, CLI_COUNT, CLI_DEST_(long, p), min, max, NULL, 0}
#define CLI_OPT_RUN(p) {"run", CLI_RUN, CLI_DEST_(long, p), 0, 0, NULL, 0}
#define CLI_OPT_LAYER(p) {"layer", CLI_LAYER, CLI_DEST_(long, p), 0, 0, NULL, 0}
#define CLI_OPT_SPLIT(p) {"split", CLI_SPLIT, CLI_DEST_(SplitMode, p), 0, 0, NULL, 0}
#define CLI_OPT_CALL(name, fn, p) {name, CLI_CALL, (void *)(p), 0, 0, fn, 0}
#define CLI_OPT_END {NULL, CLI_STRING, NULL, 0, 0, NULL, 0}

/* The positional arguments, in the order given: getopt_long moves them
 * behind the options, so they are argv's tail. */
typedef struct {
    char **arg;
    int n;
} CliArgs;

/* Parses argv[1..] (argv[0] is the command's name) with getopt_long, as
 * every command did by hand: --opt value and --opt=value, unique prefixes of
 * the names, options after positional arguments, "--" before arguments that
 * start with '-'. Each option is applied as it is read, so the first bad one
 * is the error: an option getopt_long rejects (unknown, ambiguous, missing
 * its value) is cli_bad_option's, a bad value its kind's parser's. --help
 * prints usage_text. Returns -1 to go on, else the exit code: PROBE_EXIT_OK
 * after --help, PROBE_EXIT_USAGE after a usage error. The positional
 * arguments go to *args; with args NULL the command takes none, and the first
 * is cli_extra_argument's error. */
int cli_parse(int argc, char **argv, const char *usage_text, const CliOption *opts, CliArgs *args);

/* The PROBE_* database variables (store_env_check) as a usage error: -1 when
 * they are fine, else PROBE_EXIT_USAGE after printing it. */
int cli_check_store_env(void);

/* ---- the recorded run a command reads ---------------------------------------------------------------------- */

/* neuron_run_find of --run (run_opt <= 0: the latest complete run): -1 with
 * *run to go on (the caller frees it, also on error), else the exit code
 * after printing the error: a usage error when there is no such run, a
 * runtime error when the database could not be read. */
int cli_find_run(Store *s, long run_opt, NeuronRun *run);

/* Before a command replays run's windows to compare with what it recorded:
 * a note on stderr when this machine's OpenBLAS kernels are not the ones
 * the run was recorded with (runs.blas; the same bits need the same
 * kernels, and OPENBLAS_CORETYPE selects them). Nothing when they are, or
 * when the run's are unknown. */
void cli_note_kernels(const NeuronRun *run);

/* The checks of a run that a command computes over, each -1 when it holds,
 * else the exit code after printing: cli_run_complete, that the run is
 * complete (a runtime error, pointing to record --resume);
 * cli_run_recorded_layer, that --layer (when >= 0) was recorded (a usage
 * error). */
int cli_run_complete(const NeuronRun *run);
int cli_run_recorded_layer(const NeuronRun *run, long layer);

/* The layers a command computes over: --layer when >= 0, else every
 * recorded layer of the run; *out (malloc'd, the caller frees) and *n, and
 * the same as a JSON array ("[0,1,5]", cut short if it does not fit in cap)
 * in json. 0, or -1 when out of memory. */
int cli_run_layers(const NeuronRun *run, long layer, int **out, int *n, char *json, size_t cap);

/* ---- --json output ----------------------------------------------------------------------------------------- */

struct cJSON;


/* Prints root as indented JSON and a newline on stdout, and deletes it
 * (root may be NULL, after a failed cJSON_CreateObject). 0, or -1 when out
 * of memory (nothing printed). */
int cli_print_json(struct cJSON *root);

/* ---- the end of a command ---------------------------------------------------------------------------------- */

/* For a command that printed its figures and then tried to store them
 * (storing never throws figures away): flushes stdout so that they are out
 * before any error line, then PROBE_EXIT_OK when they were stored, else the
 * runtime error "<store_err>; <lost>" (lost: "the figures above were not
 * stored", ...). */
int cli_stored(int stored, const char *store_err, const char *lost);

#endif
