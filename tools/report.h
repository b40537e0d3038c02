/* tools/report.h: the parts of the commands' reports that several commands print: which
 * model and backend a run used (text and JSON), and a JSON report printed whole. */
#ifndef SAMC_REPORT_H
#define SAMC_REPORT_H
#include <stddef.h>

#include <cjson/cJSON.h>

#include "model/samc.h"

/* "config", "backend", "precision" and "threads" of info, added to obj. */
void report_model_json(cJSON *obj, const samc_model_info *info);
/* "cpu_fast (fp32), 4 threads": the backend, its precision and threads. */
void report_backend_text(const samc_model_info *info, char *out, size_t size);
/* Prints root (indented) and a newline on stdout and deletes it. Returns CLI_OK, or
 * CLI_FAIL with one error line when the text cannot be made (out of memory). */
int report_print_json(cJSON *root);

#endif
