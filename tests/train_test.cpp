#include <gtest/gtest.h>

#include <cmath>

#include "train/adamw.h"
#include "train/grad_clip.h"
#include "train/schedule.h"

using namespace hippo;

TEST(Schedule, WarmupThenCosineToFloor) {
  Schedule s{10, 110, 0.1f};
  EXPECT_FLOAT_EQ(s.at(0), 0.1f);
  EXPECT_FLOAT_EQ(s.at(4), 0.5f);
  EXPECT_FLOAT_EQ(s.at(9), 1.0f);
  EXPECT_FLOAT_EQ(s.at(10), 1.0f);
  EXPECT_NEAR(s.at(60), 0.1f + 0.9f * 0.5f, 1e-6);
  EXPECT_NEAR(s.at(110), 0.1f, 1e-6);
  EXPECT_NEAR(s.at(500), 0.1f, 1e-6);
  for (int i = 11; i < 110; ++i) EXPECT_LE(s.at(i), s.at(i - 1));
}

TEST(GradClip, ScalesToMaxNormAndFindsNonFinite) {
  Param a = make_param({3}, ParamKind::Decay), b = make_param({1}, ParamKind::NoDecay);
  a.grad[0] = 3;
  a.grad[1] = 0;
  a.grad[2] = 0;
  b.grad[0] = 4;
  ParamList ps = {{"a", &a}, {"b", &b}};
  EXPECT_DOUBLE_EQ(grad_norm(ps), 5.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 1.0), 5.0);
  EXPECT_NEAR(grad_norm(ps), 1.0, 1e-6);
  EXPECT_EQ(first_nonfinite_grad(ps), "");
  b.grad[0] = NAN;
  EXPECT_EQ(first_nonfinite_grad(ps), "b");
}

TEST(AdamW, GroupsGetTheirLearningRateAndDecay) {
  AdamWOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0.1f;
  AdamW opt({}, o);
  EXPECT_FLOAT_EQ(opt.lr_for(ParamKind::Decay, 1.0f), 1e-2f);
  EXPECT_FLOAT_EQ(opt.lr_for(ParamKind::SsmDynamics, 1.0f), 1e-3f);
  EXPECT_FLOAT_EQ(opt.lr_for(ParamKind::SsmDynamics, 0.5f), 5e-4f);
  EXPECT_FLOAT_EQ(opt.decay_for(ParamKind::Decay), 0.1f);
  EXPECT_FLOAT_EQ(opt.decay_for(ParamKind::NoDecay), 0.0f);
  EXPECT_FLOAT_EQ(opt.decay_for(ParamKind::SsmDynamics), 0.0f);
}
