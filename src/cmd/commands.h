/* commands.h — one entry point per subcommand, each in its own cmd_*.c with
 * its usage text. Each returns the process exit code (PROBE_EXIT_*) and
 * handles --help. argv[0] is the subcommand name. */
#ifndef PROBE_COMMANDS_H
#define PROBE_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_top_neurons(int argc, char **argv);
int cmd_kv(int argc, char **argv);
int cmd_neuron(int argc, char **argv);
int cmd_ablate(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
