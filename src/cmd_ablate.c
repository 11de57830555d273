/* cmd_ablate.c — placeholder until its issue lands; replaced by the real command. */
#include <stdio.h>

#include "commands.h"
#include "util.h"

int cmd_ablate(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "probe: '%s' is not implemented yet\n", argv[0]);
    return PROBE_EXIT_RUNTIME;
}
