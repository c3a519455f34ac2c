// The batched forward NTT on the GPU: the butterflies of arith.cuh, one launch per stage for
// every polynomial of the batch at once, then one launch for the final reduction.

#include <cuda_runtime.h>
#include <string>
#include "cuda/api.h"
#include "errors.h"
#include "cuda/arith.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            __global__ void ntt_stage(
                std::uint64_t *values, std::size_t polys, int log_n, std::size_t m, std::uint64_t q,
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
                std::uint64_t *x = values + (poly << log_n) + 2 * gap * i + j;
                butterfly(x[0], x[gap], roots[m + i], quots[m + i], q);
            }

            __global__ void final_reduce(std::uint64_t *values, std::size_t count, std::uint64_t q)
            {
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t < count)
                {
                    values[t] = reduce_4q(values[t], q);
                }
            }

            void check(cudaError_t status, const char *what)
            {
                if (status != cudaSuccess)
                {
                    throw DeviceError(std::string("CUDA ") + what + ": " + cudaGetErrorString(status));
                }
            }

            /** Device buffers freed on every path. */
            struct Buffers
            {
                std::uint64_t *values = nullptr, *roots = nullptr, *quots = nullptr;
                ~Buffers()
                {
                    cudaFree(values);
                    cudaFree(roots);
                    cudaFree(quots);
                }
            };
        } // namespace

        void ntt_forward_device(
            std::uint64_t *values, std::size_t polys, int log_n, std::uint64_t q, const std::uint64_t *roots,
            const std::uint64_t *quots)
        {
            if (log_n < 1 || log_n > 17 || polys == 0)
            {
                throw ParameterError("ntt_forward_device: log_n must be 1 to 17 and the batch non-empty");
            }
            const std::size_t n = std::size_t(1) << log_n;
            const std::size_t words = polys * n, bytes = words * sizeof(std::uint64_t);
            Buffers d;
            check(cudaMalloc(&d.values, bytes), "allocation of the batch");
            check(cudaMalloc(&d.roots, n * sizeof(std::uint64_t)), "allocation of the roots");
            check(cudaMalloc(&d.quots, n * sizeof(std::uint64_t)), "allocation of the roots");
            check(cudaMemcpy(d.values, values, bytes, cudaMemcpyHostToDevice), "copy to the device");
            check(cudaMemcpy(d.roots, roots, n * sizeof(std::uint64_t), cudaMemcpyHostToDevice), "copy to the device");
            check(cudaMemcpy(d.quots, quots, n * sizeof(std::uint64_t), cudaMemcpyHostToDevice), "copy to the device");
            const unsigned threads = 256;
            const std::size_t butterflies = polys * (n / 2);
            const unsigned blocks = static_cast<unsigned>((butterflies + threads - 1) / threads);
            for (std::size_t m = 1; m < n; m <<= 1)
            {
                ntt_stage<<<blocks, threads>>>(d.values, polys, log_n, m, q, d.roots, d.quots);
                check(cudaGetLastError(), "NTT stage launch");
            }
            final_reduce<<<static_cast<unsigned>((words + threads - 1) / threads), threads>>>(d.values, words, q);
            check(cudaGetLastError(), "reduction launch");
            check(cudaDeviceSynchronize(), "NTT");
            check(cudaMemcpy(values, d.values, bytes, cudaMemcpyDeviceToHost), "copy to the host");
        }
    } // namespace cuda
} // namespace fhto
