// The batched forward NTT on the GPU: the butterflies of arith.cuh, one launch per stage for
// every polynomial of the batch at once, then one launch for the final reduction.

#include "cuda/api.h"
#include "cuda/arith.cuh"
#include "cuda/decode.cuh"
#include "cuda/device.cuh"
#include "cuda/launch.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            __global__ void ntt_stage(
                std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::size_t m, std::uint64_t q,
                const std::uint64_t *roots, const std::uint64_t *quots)
            {
                const std::size_t half = std::size_t(1) << (log_n - 1);
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t >= polys * half)
                {
                    return;
                }
                const std::size_t poly = t / half, b = t % half;
                const std::size_t gap = half / m, i = b / gap, j = b % gap;
                std::uint64_t *x = values + poly * stride + 2 * gap * i + j;
                butterfly(x[0], x[gap], roots[m + i], quots[m + i], q);
            }

            __global__ void final_reduce(std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q)
            {
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t < (polys << log_n))
                {
                    std::uint64_t &v = values[(t >> log_n) * stride + (t & ((std::size_t(1) << log_n) - 1))];
                    v = reduce_4q(v, q);
                }
            }

            __global__ void ntt_inverse_stage(
                std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::size_t m, std::uint64_t q,
                const std::uint64_t *roots, const std::uint64_t *quots)
            {
                const std::size_t n = std::size_t(1) << log_n, half = n / 2;
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t >= polys * half)
                {
                    return;
                }
                const std::size_t gap = half / m, b = t % half, i = b / gap, j = b % gap;
                std::uint64_t *x = values + (t / half) * stride + 2 * gap * i + j;
                const std::size_t r = fft_inverse_root_offset(n, m) + i;
                inverse_butterfly(x[0], x[gap], roots[r], quots[r], q);
            }

            __global__ void ntt_inverse_last(
                std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q, std::uint64_t inv_n,
                std::uint64_t inv_n_quot, std::uint64_t scaled_w, std::uint64_t scaled_w_quot)
            {
                const std::size_t half = (std::size_t(1) << log_n) / 2;
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t < polys * half)
                {
                    std::uint64_t *x = values + (t / half) * stride + t % half;
                    inverse_last(x[0], x[half], inv_n, inv_n_quot, scaled_w, scaled_w_quot, q);
                }
            }
        } // namespace

        void launch_ntt_inverse(
            std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q,
            const std::uint64_t *roots, const std::uint64_t *quots, std::uint64_t inv_n, std::uint64_t inv_n_quot,
            std::uint64_t scaled_w, std::uint64_t scaled_w_quot, cudaStream_t stream)
        {
            const std::size_t n = std::size_t(1) << log_n;
            const unsigned threads = 256;
            const unsigned blocks = blocks_for(polys * (n / 2), threads);
            for (std::size_t m = n / 2; m > 1; m >>= 1)
            {
                ntt_inverse_stage<<<blocks, threads, 0, stream>>>(values, polys, stride, log_n, m, q, roots, quots);
                check(cudaGetLastError(), "inverse NTT stage launch");
            }
            ntt_inverse_last<<<blocks, threads, 0, stream>>>(values, polys, stride, log_n, q, inv_n, inv_n_quot, scaled_w, scaled_w_quot);
            check(cudaGetLastError(), "inverse NTT launch");
        }

        void launch_ntt_forward(
            std::uint64_t *values, std::size_t polys, std::size_t stride, int log_n, std::uint64_t q,
            const std::uint64_t *roots, const std::uint64_t *quots, cudaStream_t stream)
        {
            const std::size_t n = std::size_t(1) << log_n;
            const unsigned threads = 256;
            const unsigned blocks = blocks_for(polys * (n / 2), threads);
            for (std::size_t m = 1; m < n; m <<= 1)
            {
                ntt_stage<<<blocks, threads, 0, stream>>>(values, polys, stride, log_n, m, q, roots, quots);
                check(cudaGetLastError(), "NTT stage launch");
            }
            final_reduce<<<blocks_for(polys * n, threads), threads, 0, stream>>>(values, polys, stride, log_n, q);
            check(cudaGetLastError(), "NTT reduction launch");
        }

        void ntt_forward_device(
            std::uint64_t *values, std::size_t polys, int log_n, std::uint64_t q, const std::uint64_t *roots,
            const std::uint64_t *quots)
        {
            if (log_n < 1 || log_n > 17 || polys == 0)
            {
                throw ParameterError("ntt_forward_device: log_n must be 1 to 17 and the batch non-empty");
            }
            const std::size_t n = std::size_t(1) << log_n;
            const std::size_t words = polys * n;
            const DeviceArray<std::uint64_t> d_values(values, words, "allocation of the batch");
            const DeviceArray<std::uint64_t> d_roots(roots, n, "allocation of the roots");
            const DeviceArray<std::uint64_t> d_quots(quots, n, "allocation of the roots");
            launch_ntt_forward(d_values.get(), polys, n, log_n, q, d_roots.get(), d_quots.get(), nullptr);
            check(cudaDeviceSynchronize(), "NTT");
            d_values.copy_to(values, words);
        }
    } // namespace cuda
} // namespace fhto
