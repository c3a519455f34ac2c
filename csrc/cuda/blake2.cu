// Blake2xb streams on the GPU: the roots of every refill of every seed in one launch, then every
// 64-byte leaf in another (a thread per leaf), written as the streams' words in order.

#include <vector>
#include "cuda/api.h"
#include "cuda/blake2.cuh"
#include "cuda/device.cuh"
#include "cuda/launch.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            constexpr std::uint64_t kWordsPerRefill = kStreamBlockBytes / 8;

            __global__ void roots_kernel(
                const std::uint64_t *seeds, std::size_t seed_stride, std::size_t nseeds, std::size_t refills, std::uint64_t *roots)
            {
                const std::size_t t = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
                if (t < nseeds * refills)
                {
                    blake2xb_root(seeds + seed_stride * (t / refills), t % refills, roots + 8 * t);
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

            /** SEAL's uniform sampling, one warp per ciphertext; lane 0 replaces rejected words in order. */
            __global__ void uniform_kernel(
                const std::uint64_t *streams, std::uint64_t stream_words, std::uint64_t cts, std::uint64_t n,
                std::uint64_t limbs, const UniformPrime *primes, std::uint64_t *a, unsigned *failed)
            {
                const std::uint64_t warp = (blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x) / 32, lane = threadIdx.x % 32;
                if (warp >= cts)
                {
                    return;
                }
                const std::uint64_t *s = streams + warp * stream_words;
                std::uint64_t *out = a + warp * limbs * n;
                std::uint64_t next = limbs * n;
                bool ok = true;
                for (std::uint64_t base = 0; base < limbs * n; base += 32)
                {
                    const UniformPrime p = primes[base / n];
                    const std::uint64_t w = s[base + lane];
                    const bool rejected = w >= p.max_multiple;
                    const unsigned mask = __ballot_sync(0xFFFFFFFFu, rejected);
                    if (!rejected)
                    {
                        out[base + lane] = barrett_reduce(w, p);
                    }
                    if (mask != 0 && lane == 0)
                    {
                        for (unsigned m = mask; m != 0; m &= m - 1)
                        {
                            std::uint64_t r = 0;
                            do
                            {
                                if (next == stream_words)
                                {
                                    ok = false;
                                    break;
                                }
                                r = s[next++];
                            } while (r >= p.max_multiple);
                            out[base + __ffs(m) - 1] = barrett_reduce(r, p);
                        }
                    }
                    __syncwarp();
                }
                if (lane == 0 && !ok)
                {
                    failed[warp] = 1;
                }
            }
        } // namespace

        void launch_uniform(
            const std::uint64_t *streams, std::uint64_t stream_words, std::uint64_t cts, std::uint64_t n,
            std::uint64_t limbs, const UniformPrime *primes, std::uint64_t *a, unsigned *failed, cudaStream_t stream)
        {
            uniform_kernel<<<blocks_for(32 * cts, 128), 128, 0, stream>>>(streams, stream_words, cts, n, limbs, primes, a, failed);
            check(cudaGetLastError(), "uniform sampling launch");
        }

        std::size_t blake2xb_scratch_words(std::size_t nseeds, std::size_t words)
        {
            return 8 * nseeds * ((words + kWordsPerRefill - 1) / kWordsPerRefill);
        }

        void launch_blake2xb(
            const std::uint64_t *seeds, std::size_t seed_stride, std::size_t nseeds, std::size_t words,
            std::uint64_t *scratch, std::uint64_t *out, cudaStream_t stream)
        {
            if (nseeds == 0 || words == 0)
            {
                return;
            }
            const std::size_t refills = (words + kWordsPerRefill - 1) / kWordsPerRefill;
            const unsigned threads = 256;
            const std::size_t root_count = nseeds * refills, leaf_count = root_count * (kStreamBlockBytes / 64);
            roots_kernel<<<blocks_for(root_count, threads), threads, 0, stream>>>(seeds, seed_stride, nseeds, refills, scratch);
            check(cudaGetLastError(), "Blake2xb root launch");
            leaves_kernel<<<blocks_for(leaf_count, threads), threads, 0, stream>>>(scratch, nseeds, refills, words, out);
            check(cudaGetLastError(), "Blake2xb leaf launch");
        }

        void blake2xb_words_device(const std::uint64_t *seeds, std::size_t nseeds, std::size_t words, std::uint64_t *out)
        {
            if (nseeds == 0 || words == 0)
            {
                return;
            }
            const DeviceArray<std::uint64_t> d_seeds(seeds, 8 * nseeds, "allocation of the seeds");
            const DeviceArray<std::uint64_t> d_roots(blake2xb_scratch_words(nseeds, words), "allocation of the roots");
            const DeviceArray<std::uint64_t> d_out(nseeds * words, "allocation of the streams");
            launch_blake2xb(d_seeds.get(), 8, nseeds, words, d_roots.get(), d_out.get(), nullptr);
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
