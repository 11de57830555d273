/* cli.c — see cli.h. */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *command;

void cli_set_command(const char *name) {
    command = name;
    error_prefix_set(name);
}

const char *cli_command(void) { return command; }

static void vprint(const char *fmt, va_list ap, int with_help) {
    char msg[PROBE_ERR_LEN];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!command)
        fprintf(stderr, "probe: %s\n", msg);
    else if (with_help)
        fprintf(stderr, "probe %s: %s (see probe %s --help)\n", command, msg, command);
    else
        fprintf(stderr, "probe %s: %s\n", command, msg);
}

int cli_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprint(fmt, ap, 0);
    va_end(ap);
    return code;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprint(fmt, ap, 1);
    va_end(ap);
    return PROBE_EXIT_USAGE;
}

/* getopt_long leaves optind past the option it rejected (and past its
 * missing argument); the last argument it looked at is argv[optind - 1]. */
int cli_bad_option(char **argv) {
    return cli_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
}

int cli_extra_argument(const char *arg) { return cli_usage_error("unexpected argument '%s'", arg); }

int cli_help(const char *usage_text) {
    fputs(usage_text, stdout);
    return PROBE_EXIT_OK;
}

int cli_parse_count(const char *opt, const char *arg, long min, long max, long *out) {
    if (parse_long(arg, min, max, out) == 0) return 0;
    if (max == 2147483647L)
        cli_usage_error("%s must be an integer >= %ld, not '%s'", opt, min, arg);
    else
        cli_usage_error("%s must be an integer in %ld..%ld, not '%s'", opt, min, max, arg);
    return -1;
}

int cli_parse_layer(const char *arg, long *out) {
    if (parse_long(arg, 0, 1000000, out) == 0) return 0;
    cli_usage_error("--layer must be a layer number (0, 1, ...), not '%s'", arg);
    return -1;
}

int cli_parse_run(const char *arg, long *out) {
    if (parse_long(arg, 1, 2147483647L, out) == 0) return 0;
    cli_usage_error("--run must be a run id (1, 2, ...), not '%s'", arg);
    return -1;
}

int cli_parse_split(const char *arg, SplitMode *out) {
    if (!strcmp(arg, "paragraph")) *out = SPLIT_PARAGRAPH;
    else if (!strcmp(arg, "line")) *out = SPLIT_LINE;
    else if (!strcmp(arg, "file")) *out = SPLIT_FILE;
    else {
        cli_usage_error("--split must be paragraph, line or file, not '%s'", arg);
        return -1;
    }
    return 0;
}
