// `samx compare A.json B.json`: the eval JSON reader and the table with its paired tests. The input
// is compared against a fixed valid eval file in both orders, and against itself.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common.h"

int samx_cmd_compare(int argc, char **argv);

static const char valid[] =
    "{\"method\": \"ref\", \"metrics\": {\"dice\": {\"mean\": 0.5, \"std\": 0.1}, \"ged\": {\"mean\": 0.3}},"
    " \"per_sample\": [{\"index\": 0, \"dice\": 0.4, \"ged\": 0.2}, {\"index\": 1, \"dice\": 0.6, \"ged\": null},"
    " {\"index\": 2, \"dice\": 0.7, \"ged\": 0.1}]}";

// What load_eval_json accepts (tools/cmd_eval.c); used only to step over the known issue.
static int is_eval_json(const char *path) {
  json_t *r = json_load_file(path, 0, NULL);
  int ok = r && json_is_object(json_object_get(r, "metrics")) && json_is_array(json_object_get(r, "per_sample"));
  json_decref(r);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  fuzz_quiet();
  char a[512], b[512], cmd[] = "compare";
  snprintf(a, sizeof a, "%s", fuzz_write_file(0, ".json", (const uint8_t *)valid, strlen(valid)));
  snprintf(b, sizeof b, "%s", fuzz_write_file(1, ".json", data, n));
  int later_ok = !fuzz_skip("compare-bad-second-file") || is_eval_json(b);
  char *ab[] = {cmd, a, b, NULL}, *ba[] = {cmd, b, a, NULL}, *bb[] = {cmd, b, b, NULL};
  if (later_ok) samx_cmd_compare(3, ab);
  samx_cmd_compare(3, ba);
  if (later_ok) samx_cmd_compare(3, bb);
  return 0;
}
