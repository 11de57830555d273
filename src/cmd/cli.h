/* cli.h — what every command shares: the error prefix, usage errors, the
 * common options' parsers. One convention for all of them:
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
 *   while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) switch (c) {
 *       case O_LAYER: if (cli_parse_layer(optarg, &layer)) return PROBE_EXIT_USAGE; break;
 *       case O_HELP: return cli_help(usage_text);
 *       default: return cli_bad_option(argv);
 *   }
 *   if (optind < argc) return cli_extra_argument(argv[optind]);
 */
#ifndef PROBE_CLI_H
#define PROBE_CLI_H

#include "corpus.h"

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

/* Parsers of the options several commands share. Each returns 0 and sets
 * *out, or prints the usage error and returns -1 (the caller returns
 * PROBE_EXIT_USAGE). Ranges against a model or a run are checked later,
 * where the model or run is known. */
int cli_parse_layer(const char *arg, long *out);           /* --layer L: 0.. */
int cli_parse_run(const char *arg, long *out);             /* --run ID: 1.. */
int cli_parse_split(const char *arg, SplitMode *out);      /* --split paragraph|line|file */
int cli_parse_count(const char *opt, const char *arg, long min, long max, long *out); /* any integer option */

#endif
