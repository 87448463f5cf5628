// Training curves of a run as an SVG drawing: the training loss against the step (each logged
// value and a running mean) and, when the run validated, the validation metrics against the step.
#ifndef SAMX_TRAIN_CURVES_H
#define SAMX_TRAIN_CURVES_H

#ifdef __cplusplus
extern "C" {
#endif

// Reads log_path (the run's log.jsonl) and writes svg_path atomically. Returns 0 or -1.
int samx_train_curves_svg(const char *log_path, const char *svg_path);

#ifdef __cplusplus
}
#endif
#endif
