// Blake2xb streams on the GPU: the roots of every refill of every seed in one launch, then every
// 64-byte leaf in another (a thread per leaf), written as the streams' words in order.

#include <vector>
#include "cuda/api.h"
#include "cuda/blake2.cuh"
#include "cuda/device.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            constexpr std::uint64_t kWordsPerRefill = kStreamBlockBytes / 8;

            __global__ void roots_kernel(const std::uint64_t *seeds, std::size_t nseeds, std::size_t refills, std::uint64_t *roots)
            {
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t < nseeds * refills)
                {
                    blake2xb_root(seeds + 8 * (t / refills), t % refills, roots + 8 * t);
                }
            }

            __global__ void leaves_kernel(
                const std::uint64_t *roots, std::size_t nseeds, std::size_t refills, std::size_t words, std::uint64_t *out)
            {
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                const std::size_t leaves = kStreamBlockBytes / 64;
                if (t >= nseeds * refills * leaves)
                {
                    return;
                }
                const std::size_t seed = t / (refills * leaves), rest = t % (refills * leaves);
                const std::size_t refill = rest / leaves, leaf = rest % leaves;
                std::uint64_t h[8];
                blake2xb_leaf(roots + 8 * (seed * refills + refill), leaf, h);
                const std::size_t first = refill * kWordsPerRefill + 8 * leaf;
                for (std::size_t i = 0; i < 8 && first + i < words; i++)
                {
                    out[seed * words + first + i] = h[i];
                }
            }
        } // namespace

        void blake2xb_words_device(const std::uint64_t *seeds, std::size_t nseeds, std::size_t words, std::uint64_t *out)
        {
            if (nseeds == 0 || words == 0)
            {
                return;
            }
            const std::size_t refills = (words + kWordsPerRefill - 1) / kWordsPerRefill;
            const DeviceArray<std::uint64_t> d_seeds(seeds, 8 * nseeds, "allocation of the seeds");
            const DeviceArray<std::uint64_t> d_roots(8 * nseeds * refills, "allocation of the roots");
            const DeviceArray<std::uint64_t> d_out(nseeds * words, "allocation of the streams");
            const unsigned threads = 256;
            const std::size_t root_count = nseeds * refills, leaf_count = root_count * (kStreamBlockBytes / 64);
            roots_kernel<<<static_cast<unsigned>((root_count + threads - 1) / threads), threads>>>(d_seeds.get(), nseeds, refills, d_roots.get());
            check(cudaGetLastError(), "root launch");
            leaves_kernel<<<static_cast<unsigned>((leaf_count + threads - 1) / threads), threads>>>(
                d_roots.get(), nseeds, refills, words, d_out.get());
            check(cudaGetLastError(), "leaf launch");
            check(cudaDeviceSynchronize(), "Blake2xb");
            d_out.copy_to(out, nseeds * words);
        }
        void expand_uniform_device(
            const std::uint64_t *seeds, std::size_t nseeds, std::size_t n, std::size_t limbs, const std::uint64_t *primes,
            std::uint64_t *out)
        {
            // The streams with spares for the rejected words (SEAL's primes reject a word with
            // probability far below 2^-8); the reductions then run on the host's copy, in order,
            // because a rejection shifts every later replacement.
            const std::size_t needed = n * limbs, words = needed + needed / 16 + 64;
            std::vector<std::uint64_t> stream(nseeds * words);
            blake2xb_words_device(seeds, nseeds, words, stream.data());
            std::vector<UniformPrime> p(limbs);
            for (std::size_t l = 0; l < limbs; l++)
            {
                p[l] = UniformPrime{ primes[3 * l], primes[3 * l + 1], primes[3 * l + 2] };
            }
            for (std::size_t k = 0; k < nseeds; k++)
            {
                if (!expand_uniform_host(stream.data() + k * words, words, n, limbs, p.data(), out + k * needed))
                {
                    throw DeviceError("uniform sampling ran out of spare stream words (more rejections than expected)");
                }
            }
        }
    } // namespace cuda
} // namespace fhto
