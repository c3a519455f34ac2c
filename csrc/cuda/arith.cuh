#pragma once

// Modular arithmetic shared by the CUDA kernels and their host drivers: the same functions, compiled
// by nvcc for the device and by the C++ compiler for the host, so the host tests check the device's
// arithmetic bit for bit. No SEAL header here: parameters arrive as plain 64-bit words.

#include <cstdint>

#if defined(__CUDACC__)
#define FHTO_HD __host__ __device__ __forceinline__
#else
#define FHTO_HD inline
#endif

namespace fhto
{
    namespace cuda
    {
        /** The high 64 bits of a * b. */
        FHTO_HD std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b)
        {
#if defined(__CUDA_ARCH__)
            return __umul64hi(a, b);
#else
            return static_cast<std::uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
        }

        /**
        Shoup's multiplication by a fixed operand w with w_quot = floor(w * 2^64 / q): the result is
        congruent to x * w mod q and lies in [0, 2q) (q < 2^62; x any 64-bit word). The same as
        SEAL's multiply_uint_mod_lazy.
        */
        FHTO_HD std::uint64_t mul_shoup_lazy(std::uint64_t x, std::uint64_t w, std::uint64_t w_quot, std::uint64_t q)
        {
            const std::uint64_t hi = mulhi64(x, w_quot);
            return w * x - hi * q;
        }

        /** a in [0, 4q) to [0, 2q). */
        FHTO_HD std::uint64_t guard(std::uint64_t a, std::uint64_t two_q)
        {
            return a >= two_q ? a - two_q : a;
        }

        /** a in [0, 4q) to [0, q). */
        FHTO_HD std::uint64_t reduce_4q(std::uint64_t a, std::uint64_t q)
        {
            const std::uint64_t two_q = q << 1;
            a = a >= two_q ? a - two_q : a;
            return a >= q ? a - q : a;
        }

        /**
        One Cooley-Tukey butterfly of the negacyclic NTT, Harvey's lazy form (inputs and outputs in
        [0, 4q)): x, y <- x + w y, x - w y. The same operations, in the same order, as SEAL's
        DWTHandler with its lazy Arithmetic.
        */
        FHTO_HD void butterfly(std::uint64_t &x, std::uint64_t &y, std::uint64_t w, std::uint64_t w_quot, std::uint64_t q)
        {
            const std::uint64_t two_q = q << 1;
            const std::uint64_t u = guard(x, two_q);
            const std::uint64_t v = mul_shoup_lazy(y, w, w_quot, q);
            x = u + v;
            y = u + two_q - v;
        }

        /**
        The forward negacyclic NTT of n = 2^log_n words modulo q, in place, on the host: SEAL's
        ntt_negacyclic_harvey (bit-reversed output, fully reduced), given SEAL's root powers in
        their table order (roots[m + i] is the root of block i at the stage with m blocks) and their
        Shoup quotients. The device kernel runs the same butterflies, one stage per launch.
        */
        inline void ntt_forward_host(
            std::uint64_t *values, int log_n, std::uint64_t q, const std::uint64_t *roots, const std::uint64_t *quots)
        {
            const std::size_t n = std::size_t(1) << log_n;
            for (std::size_t m = 1, gap = n >> 1; m < n; m <<= 1, gap >>= 1)
            {
                for (std::size_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    for (std::size_t j = 0; j < gap; j++)
                    {
                        butterfly(x[j], x[j + gap], roots[m + i], quots[m + i], q);
                    }
                }
            }
            for (std::size_t k = 0; k < n; k++)
            {
                values[k] = reduce_4q(values[k], q);
            }
        }
    } // namespace cuda
} // namespace fhto
