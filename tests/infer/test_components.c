// The few-shot paper's SAM baselines: prompts per connected component (infer/components.h) by hand
// (two components: their tight boxes and the distance-transform maxima), and samx eval --labels (IoU,
// ASSD in mm with the row's spacing, missed and false-positive counts) against a scipy reference
// (tests/infer/eval_labels_check.py) on a dataset with a /labels class map.
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/dataset.h"
#include "data/predictions.h"
#include "infer/components.h"

enum { H = 12, W = 16 };

static void test_prompts(void) {
  uint8_t m[H * W] = {0};
  for (int y = 1; y < 6; y++)
    for (int x = 2; x < 7; x++) m[y * W + x] = 1;  // 5 x 5 square: centre (4, 3)
  for (int y = 8; y < 11; y++)
    for (int x = 9; x < 16; x++) m[y * W + x] = 1;  // 3 x 7 bar touching the right edge: centre row 9
  SamPrompt p[4];
  int n = samx_component_prompts(m, H, W, SAMX_COMPONENT_BOX, p, 4);
  CHECK(n == 2 && p[0].has_box && p[0].box[0] == 2 && p[0].box[1] == 1 && p[0].box[2] == 6 && p[0].box[3] == 5 &&
            p[1].box[0] == 9 && p[1].box[1] == 8 && p[1].box[2] == 15 && p[1].box[3] == 10,
        "boxes: %d: (%g %g %g %g) (%g %g %g %g)", n, p[0].box[0], p[0].box[1], p[0].box[2], p[0].box[3], p[1].box[0],
        p[1].box[1], p[1].box[2], p[1].box[3]);
  n = samx_component_prompts(m, H, W, SAMX_COMPONENT_POINT, p, 4);
  CHECK(n == 2 && p[0].n_points == 1 && p[0].labels[0] == 1 && p[0].points[0][0] == 4 && p[0].points[0][1] == 3 &&
            !p[0].has_box && p[1].points[0][1] == 9 && m[(int)p[1].points[0][1] * W + (int)p[1].points[0][0]],
        "points: %d: (%g, %g) (%g, %g)", n, p[0].points[0][0], p[0].points[0][1], p[1].points[0][0], p[1].points[0][1]);
  CHECK(samx_component_prompts(m, H, W, SAMX_COMPONENT_POINT, p, 1) == 1, "cap");
  memset(m, 0, sizeof m);
  CHECK(samx_component_prompts(m, H, W, SAMX_COMPONENT_BOX, p, 4) == 0, "empty mask: no prompt");
}

// Rows: 0 organ (1) and vessel (2) present; 1 vessel only; 2 nothing. Predictions: hypothesis 0 organ,
// 1 vessel, shifted and resized, one empty, one false positive.
static void test_eval_labels(const char *samx) {
  char dir[256];
  if (samx_test_mkdtemp(dir, sizeof dir, "samx_eval_labels") != 0) return;
  SamxDatasetSpec spec = {.h = H, .w = W, .k = 1, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test", .modality = "CT"};
  const char *dpath = samx_test_path(dir, "d.h5"), *ppath = samx_test_path(dir, "p.h5");
  SamxDatasetWriter *w = samx_dataset_create(dpath, &spec);
  const char *names[3] = {"background", "organ", "vessel"};
  CHECK(w && samx_dataset_writer_enable_labels(w, names, 3) == 0, "labels: %s", samx_last_error());
  static uint8_t img[H * W], lab[3][H * W], mask[H * W], pred[3][2 * H * W];
  for (int y = 2; y < 8; y++)
    for (int x = 2; x < 9; x++) lab[0][y * W + x] = 1;
  for (int r = 0; r < 2; r++)
    for (int y = 3; y < 6; y++)
      for (int x = 11; x < 14; x++) lab[r][y * W + x] = 2;
  for (int y = 3; y < 8; y++)
    for (int x = 3; x < 10; x++) pred[0][y * W + x] = 1;  // organ, shifted
  for (int y = 3; y < 7; y++)
    for (int x = 11; x < 15; x++) pred[1][H * W + y * W + x] = 1;  // vessel of row 1, larger
  pred[2][5 * W + 5] = 1;                                         // organ false positive on row 2
  for (int r = 0; r < 3 && w; r++) {
    for (int j = 0; j < H * W; j++) mask[j] = lab[r][j] != 0;
    SamxSample s = {.image = img, .masks = mask, .case_id = r ? "b" : "a", .labels = lab[r],
                    .spacing = {2.0f, 0.5f + (float)r}};
    CHECK(samx_dataset_append(w, &s) == 0, "append");
  }
  CHECK(w && samx_dataset_finish(w) == 0, "finish: %s", samx_last_error());
  char sha[65];
  samx_sha256_file(dpath, sha);
  SamxPredictionsSpec ps = {.m = 2, .h = H, .w = W, .method = "test", .checkpoint_path = "-", .checkpoint_sha256 = "",
                            .dataset_path = dpath, .dataset_sha256 = sha, .split = "all"};
  SamxPredictionsWriter *pw = samx_predictions_create(ppath, &ps);
  for (int r = 0; r < 3 && pw; r++) CHECK(samx_predictions_append(pw, r, pred[r], NULL, NAN) == 0, "append pred");
  CHECK(pw && samx_predictions_finish(pw) == 0, "pred finish: %s", samx_last_error());
  char err[512], cmd[2048];
  int st = samx_test_run_samx(dir, 0, err, sizeof err, "eval --data %s --pred %s --labels organ,vessel --json %s", dpath,
                              ppath, samx_test_path(dir, "e.json"));
  CHECK(st == 0, "samx eval --labels: exit %d: %s", st, err);
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : "/usr/bin/python3";
  snprintf(cmd, sizeof cmd, "%s tests/infer/eval_labels_check.py %s %s %s", py, dpath, ppath, samx_test_path(dir, "e.json"));
  CHECK(samx_test_exit_status(system(cmd)) == 0, "eval_labels_check.py disagrees (lines above)");
  samx_test_remove_dir(dir);
  (void)samx;
}

int main(int argc, char **argv) {
  (void)argc;
  test_prompts();
  test_eval_labels(samx_test_samx_bin(argv[0]));
  return samx_test_summary();
}
