/* tools/report.c: report lines shared by the commands (see report.h). */
#include "tools/report.h"

#include <stdio.h>
#include <stdlib.h>

#include "tools/cli_util.h"

void report_model_json(cJSON *obj, const samc_model_info *info) {
    cJSON_AddStringToObject(obj, "config", info->config);
    cJSON_AddStringToObject(obj, "backend", info->backend ? info->backend : "");
    cJSON_AddStringToObject(obj, "precision", info->precision ? info->precision : "");
    cJSON_AddNumberToObject(obj, "threads", info->n_threads);
}

void report_backend_text(const samc_model_info *info, char *out, size_t size) {
    snprintf(out, size, "%s (%s), %d threads", info->backend ? info->backend : "?",
             info->precision ? info->precision : "?", info->n_threads);
}

int report_print_json(cJSON *root) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        cli_error("--json", "out of memory");
        return CLI_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}
