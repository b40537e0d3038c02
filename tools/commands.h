/* tools/commands.h: the samc sub-commands. Each takes argv with argv[0] = the command
 * name, returns the process exit code (see cli_util.h) and prints at most one error line. */
#ifndef SAMC_COMMANDS_H
#define SAMC_COMMANDS_H
#include <stdio.h>

int cmd_segment(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_everything(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mosaic(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_find(int argc, char **argv);

void cmd_segment_help(FILE *f);
void cmd_info_help(FILE *f);
void cmd_synth_help(FILE *f);
void cmd_convert_help(FILE *f);
void cmd_bench_help(FILE *f);
void cmd_everything_help(FILE *f);
void cmd_serve_help(FILE *f);
void cmd_mosaic_help(FILE *f);
void cmd_tokenize_help(FILE *f);
void cmd_find_help(FILE *f);

#endif
