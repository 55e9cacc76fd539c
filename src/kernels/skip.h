// The SSM skip term D ⊙ u over channel-major (G, H, L) sequences, one D per channel h.
#pragma once

namespace hippo {

// y[g,h,:] += D[h] * u[g,h,:]
void skip_forward(const float* u, const float* D, float* y, int G, int H, int L);
// du[g,h,:] += D[h] * dy[g,h,:];  dD[h] += sum_{g,l} dy * u (double accumulation)
void skip_backward(const float* u, const float* D, const float* dy, float* du, float* dD, int G,
                   int H, int L);

}  // namespace hippo
