/* main.c — `probe COMMAND [options]`: dispatch to the subcommand table. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "parallel.h"
#include "util.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"info", cmd_info, "print a model's config and parameter counts by component"},
    {"tokenize", cmd_tokenize, "GPT-2 BPE token ids of a text (or --decode ids)"},
    {"predict", cmd_predict, "top next-token predictions for a prompt"},
    {"trace", cmd_trace, "run one text, write FFN activations, logits, losses as .npy"},
    {"record", cmd_record, "record FFN activations of a corpus into SQLite"},
    {"merge", cmd_merge, "combine the shard databases of record --shard I/N into one run"},
    {"top-neurons", cmd_top_neurons, "rank recorded neurons by statistics, or by a concept"},
    {"kv", cmd_kv, "key-value memories: do neurons' values predict what follows their triggers"},
    {"neuron", cmd_neuron, "one neuron's card: statistics, examples, value tokens, concepts"},
    {"ablate", cmd_ablate, "remove FFNs or neurons and measure the loss"},
    {"explain", cmd_explain, "split a prediction's logit into layers and neurons"},
    {"report", cmd_report, "a static HTML report: layers, neurons with token heatmaps, charts"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "usage: probe COMMAND [options]   (probe COMMAND --help for its options)\n\n"
            "neuron-level interpretability for GPT-2-family models\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nThe model is --model DIR, else $PROBE_MODEL, else the bundled models/demo.\n"
            "Compute threads: $PROBE_THREADS, else one per CPU this process may use.\n");
}

int main(int argc, char **argv) {
    /* A file-size limit (ulimit -f) must fail a write with EFBIG, which the
     * database reports as an error, not kill the process with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return PROBE_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return PROBE_EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            char err[PROBE_ERR_LEN];
            cli_set_command(commands[i].name);
            if (parallel_start(0, err)) return cli_error(PROBE_EXIT_USAGE, "%s", err);
            int rc = commands[i].fn(argc - 1, argv + 1);
            parallel_stop();
            return rc;
        }
    fprintf(stderr, "probe: unknown command '%s' (see 'probe --help')\n", argv[1]);
    return PROBE_EXIT_USAGE;
}
