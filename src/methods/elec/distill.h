/* Distillation losses of ELEC (Dong et al., SIGIR 2025): a student network
 * (the vanilla network, served) follows a teacher (the gain network, which
 * sees the LLM representation) at the score level and at the representation
 * level. Gradients flow to the student only (the teacher side is a constant,
 * "stop gradient").
 *
 * Dimension letters: B batch, H hidden size. */
#ifndef SC_METHODS_ELEC_DISTILL_H
#define SC_METHODS_ELEC_DISTILL_H

enum sc_kd_score_kind {
    SC_KD_BCE = 0, /* BCE(sigmoid(z_t / T), sigmoid(z_s / T)) · T², Hinton-style soft targets */
    SC_KD_MSE = 1, /* (z_s − z_t)², on logits */
};

/* Mean score-level loss over B; dz_s (B) += the gradient of weight · (mean
 * loss) with respect to the student's logits. */
double sc_kd_score(const float *z_s, const float *z_t, int B, int kind, float T, float weight, float *dz_s);

/* Mean squared error between student representation p (B, H) and teacher
 * h_t (B, H), averaged over B·H; dp (B, H) += weight · its gradient. */
double sc_kd_repr(const float *p, const float *h_t, int B, int H, float weight, float *dp);

#endif
