// `samx train --config x.ini --set section.key=value ...`: the input up to the first NUL byte is the
// INI file (libinih + samx's key table), every line after it one --set override; then the cross-key
// validation and both printed forms (INI and JSON), and the printed INI read back.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "train/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const uint8_t *nul = memchr(data, 0, n);
  size_t ini_n = nul ? (size_t)(nul - data) : n;
  SamxTrainConfig c;
  samx_train_config_defaults(&c);
  const char *path = fuzz_write_file(0, ".ini", data, ini_n);
  if (samx_train_config_load(&c, path) != 0) return 0;
  if (nul) {
    char *sets = (char *)malloc(n - ini_n);
    memcpy(sets, nul + 1, n - ini_n - 1);
    sets[n - ini_n - 1] = 0;
    for (char *line = sets, *next; line; line = next) {
      next = strchr(line, '\n');
      if (next) *next++ = 0;
      if (samx_train_config_set(&c, line) != 0) break;
    }
    free(sets);
  }
  samx_train_config_validate(&c);
  char *ini = samx_train_config_ini(&c), *json = samx_train_config_json(&c);
  SamxTrainConfig back;
  samx_train_config_defaults(&back);
  samx_train_config_load(&back, fuzz_write_file(1, ".ini", (const uint8_t *)ini, strlen(ini)));
  free(ini), free(json);
  return 0;
}
