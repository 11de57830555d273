/* cli.c — see cli.h. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "store.h"
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

/* ---- the option parser ------------------------------------------------------------------------------------- */

/* getopt_long returns an option's val: CLI_VAL + its index in the table
 * (above every character, '?' and ':' among them), its letter for -x. */
enum { CLI_MAX_OPTIONS = 48, CLI_VAL = 256 };

static const CliOption help_option = {"help", CLI_HELP, NULL, 0, 0, NULL, 0};

/* Applies one option; -1 to go on, else the exit code. */
static int apply(const CliOption *o, const char *arg, const char *usage_text) {
    char opt[80];
    switch (o->kind) {
    case CLI_STRING: *(const char **)o->dest = arg; return -1;
    case CLI_SET: *(int *)o->dest = 1; return -1;
    case CLI_CLEAR: *(int *)o->dest = 0; return -1;
    case CLI_COUNT:
        snprintf(opt, sizeof opt, "--%s", o->name);
        return cli_parse_count(opt, arg, o->min, o->max, o->dest) ? PROBE_EXIT_USAGE : -1;
    case CLI_RUN: return cli_parse_run(arg, o->dest) ? PROBE_EXIT_USAGE : -1;
    case CLI_LAYER: return cli_parse_layer(arg, o->dest) ? PROBE_EXIT_USAGE : -1;
    case CLI_SPLIT: return cli_parse_split(arg, o->dest) ? PROBE_EXIT_USAGE : -1;
    case CLI_CALL: return o->call(arg, o->dest) ? PROBE_EXIT_USAGE : -1;
    case CLI_HELP: return cli_help(usage_text);
    }
    return -1;
}

int cli_parse(int argc, char **argv, const char *usage_text, const CliOption *opts, CliArgs *args) {
    struct option lo[CLI_MAX_OPTIONS + 2];
    const CliOption *of[CLI_MAX_OPTIONS + 1];
    char letters[2 * CLI_MAX_OPTIONS + 1];
    int n = 0, nl = 0, has_help = 0;
    for (; opts[n].name; n++) {
        if (n == CLI_MAX_OPTIONS) return cli_error(PROBE_EXIT_RUNTIME, "internal error: more than %d options", n);
        int takes_arg = opts[n].kind != CLI_SET && opts[n].kind != CLI_CLEAR && opts[n].kind != CLI_HELP;
        lo[n] = (struct option){opts[n].name, takes_arg ? required_argument : no_argument, NULL, CLI_VAL + n};
        of[n] = &opts[n];
        has_help |= opts[n].kind == CLI_HELP;
        if (opts[n].letter) {
            letters[nl++] = opts[n].letter;
            if (takes_arg) letters[nl++] = ':';
        }
    }
    if (!has_help) {
        lo[n] = (struct option){help_option.name, no_argument, NULL, CLI_VAL + n};
        of[n++] = &help_option;
    }
    lo[n] = (struct option){0, 0, 0, 0};
    letters[nl] = '\0';
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, letters, lo, NULL)) != -1) {
        const CliOption *o = c >= CLI_VAL && c < CLI_VAL + n ? of[c - CLI_VAL] : NULL;
        for (int i = 0; !o && c != '?' && c != ':' && i < n; i++)
            if (of[i]->letter == c) o = of[i];
        if (!o) return cli_bad_option(argv);
        int rc = apply(o, optarg, usage_text);
        if (rc >= 0) return rc;
    }
    if (args) {
        args->arg = argv + optind;
        args->n = argc - optind;
    } else if (optind < argc) {
        return cli_extra_argument(argv[optind]);
    }
    return -1;
}

int cli_check_store_env(void) {
    char err[PROBE_ERR_LEN];
    return store_env_check(err) ? cli_usage_error("%s", err) : -1;
}

/* ---- the recorded run a command reads ---------------------------------------------------------------------- */

int cli_find_run(Store *s, long run_opt, NeuronRun *run) {
    char err[PROBE_ERR_LEN];
    int r = neuron_run_find(s, run_opt > 0 ? run_opt : 0, run, err);
    if (r == -2) return cli_usage_error("%s", err);
    return r ? cli_error(PROBE_EXIT_RUNTIME, "%s", err) : -1;
}

int cli_run_complete(const NeuronRun *run) {
    if (!strcmp(run->status, "complete")) return -1;
    return cli_error(PROBE_EXIT_RUNTIME, "run %" PRId64 " is %s: finish it first (probe record --resume)", run->id,
                     run->status);
}

int cli_run_recorded_layer(const NeuronRun *run, long layer) {
    if (layer < 0 || (layer < run->n_layer && neuron_run_has_layer(run, (int)layer))) return -1;
    return cli_usage_error("layer %ld was not recorded in run %" PRId64 " (layers %s)", layer, run->id,
                           run->layers_text);
}

int cli_run_layers(const NeuronRun *run, long layer, int **out, int *n, char *json, size_t cap) {
    int m = layer >= 0 ? 1 : run->n_layers;
    int *l = malloc(sizeof *l * (size_t)(m > 0 ? m : 1));
    if (!l) return -1;
    size_t w = (size_t)snprintf(json, cap, "[");
    for (int i = 0; i < m; i++) {
        l[i] = layer >= 0 ? (int)layer : run->layers[i];
        if (w < cap) w += (size_t)snprintf(json + w, cap - w, i ? ",%d" : "%d", l[i]);
    }
    if (w < cap) snprintf(json + w, cap - w, "]");
    *out = l;
    *n = m;
    return 0;
}

/* ---- --json output ----------------------------------------------------------------------------------------- */

int cli_print_json(cJSON *root) {
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return -1;
    puts(text);
    cJSON_free(text);
    return 0;
}

/* ---- the end of a command ---------------------------------------------------------------------------------- */

int cli_stored(int stored, const char *store_err, const char *lost) {
    fflush(stdout);
    return stored ? PROBE_EXIT_OK : cli_error(PROBE_EXIT_RUNTIME, "%s; %s", store_err, lost);
}

const char *cli_small(char *buf, size_t cap, double x, int plus) {
    if (x == 0 || fabs(x) >= 0.00995 || !isfinite(x))
        snprintf(buf, cap, plus ? "%+.4f" : "%.4f", x);
    else
        snprintf(buf, cap, plus ? "%+.2e" : "%.2e", x);
    return buf;
}

void cli_note_kernels(const NeuronRun *run) {
    const char *now = parallel_blas_core();
    if (!run->blas || !strcmp(run->blas, now) || !text_printable(run->blas)) return; /* read back, untrusted */
    if (strchr(run->blas, ','))
        cli_error(0, "note: run %lld was recorded with OpenBLAS's %s kernels (in several sessions or shards) and "
                  "this replay uses %s: replayed activations may differ from the recorded ones in their last bits",
                  (long long)run->id, run->blas, now);
    else
        cli_error(0, "note: run %lld was recorded with OpenBLAS's %s kernels and this replay uses %s: replayed "
                  "activations may differ from the recorded ones in their last bits (OPENBLAS_CORETYPE=%s "
                  "replays them exactly)",
                  (long long)run->id, run->blas, now, run->blas);
}
