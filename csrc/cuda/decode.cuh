#pragma once

// Decryption and CKKS decoding as SEAL's Decryptor and CKKSEncoder do them, shared by the GPU
// kernels and their host driver: m = c0 + c1 s modulo each prime, the inverse NTT, the CRT
// composition of the limbs into one integer below Q, its value as a double exactly as SEAL forms
// it (word by word, centred at Q/2, times 1/scale), SEAL's forward FFT (transform_to_rev) and
// the slots read back through the index map. Every modular step has a unique answer; the double
// steps are SEAL's operations in SEAL's order, never fused (see encode.cuh).

#include <cstdint>
#include "cuda/arith.cuh"
#include "cuda/encode.cuh"

namespace fhto
{
    namespace cuda
    {
        constexpr int kMaxWords = 8;

        /** m = c0 + c1 s modulo q (every input below q; s_quot its Shoup quotient). */
        FHTO_HD std::uint64_t decrypt_coefficient(
            std::uint64_t c0, std::uint64_t c1, std::uint64_t s, std::uint64_t s_quot, std::uint64_t q)
        {
            std::uint64_t t = mul_shoup_lazy(c1, s, s_quot, q);
            t = t >= q ? t - q : t;
            t += c0;
            return t >= q ? t - q : t;
        }

        /** One butterfly of the inverse negacyclic NTT (Gentleman-Sande, lazy, values in [0, 2q)). */
        FHTO_HD void inverse_butterfly(std::uint64_t &x, std::uint64_t &y, std::uint64_t w, std::uint64_t w_quot, std::uint64_t q)
        {
            const std::uint64_t two_q = q << 1;
            const std::uint64_t u = x, v = y;
            x = guard(u + v, two_q);
            y = mul_shoup_lazy(u + two_q - v, w, w_quot, q);
        }

        /** The inverse NTT's last stage, with 1/n folded in: x, y <- (x + y) / n, (x - y) w / n. */
        FHTO_HD void inverse_last(
            std::uint64_t &x, std::uint64_t &y, std::uint64_t inv_n, std::uint64_t inv_n_quot, std::uint64_t scaled_w,
            std::uint64_t scaled_w_quot, std::uint64_t q)
        {
            const std::uint64_t two_q = q << 1;
            const std::uint64_t u = guard(x, two_q), v = y;
            x = reduce_4q(mul_shoup_lazy(guard(u + v, two_q), inv_n, inv_n_quot, q), q);
            y = reduce_4q(mul_shoup_lazy(u + two_q - v, scaled_w, scaled_w_quot, q), q);
        }

        /**
        The inverse negacyclic NTT of one polynomial on the host: SEAL's inverse root powers in
        their table order (roots[k], quots[k]: the stage with m blocks uses k = 1 + n - 2m + i, as
        the inverse FFT does), then the last stage with 1/n and its scaled root. Output in [0, q).
        */
        inline void ntt_inverse_host(
            std::uint64_t *values, int log_n, std::uint64_t q, const std::uint64_t *roots, const std::uint64_t *quots,
            std::uint64_t inv_n, std::uint64_t inv_n_quot, std::uint64_t scaled_w, std::uint64_t scaled_w_quot)
        {
            const std::uint64_t n = std::uint64_t(1) << log_n;
            std::uint64_t gap = 1, m = n >> 1;
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                const std::uint64_t first = fft_inverse_root_offset(n, m);
                for (std::uint64_t i = 0; i < m; i++)
                {
                    std::uint64_t *x = values + 2 * gap * i;
                    for (std::uint64_t j = 0; j < gap; j++)
                    {
                        inverse_butterfly(x[j], x[j + gap], roots[first + i], quots[first + i], q);
                    }
                }
            }
            for (std::uint64_t j = 0; j < gap; j++)
            {
                inverse_last(values[j], values[j + gap], inv_n, inv_n_quot, scaled_w, scaled_w_quot, q);
            }
        }

        /**
        What decoding needs beyond encoding's tables: the limbs' CRT constants (Q/q_j as `limbs`
        words each, (Q/q_j)^-1 mod q_j with its Shoup quotient), Q and ceil(Q/2) as words, 1/scale,
        and SEAL's root_powers_ for the forward FFT (n entries).
        */
        struct DecodeTables
        {
            int log_n = 0;
            int limbs = 0;
            const std::uint64_t *primes = nullptr; ///< q_j
            const std::uint64_t *q_hat = nullptr; ///< limbs * limbs words
            const std::uint64_t *q_hat_inv = nullptr; ///< limbs
            const std::uint64_t *q_hat_inv_quot = nullptr; ///< limbs
            const std::uint64_t *modulus = nullptr; ///< Q, limbs words
            const std::uint64_t *half = nullptr; ///< ceil(Q / 2), limbs words
            const Complex *roots = nullptr; ///< root_powers_
            const std::uint64_t *index_map = nullptr;
            double inv_scale = 0;
        };

        /** x >= y over `words` little-endian words. */
        FHTO_HD bool ge_words(const std::uint64_t *x, const std::uint64_t *y, int words)
        {
            for (int i = words - 1; i >= 0; i--)
            {
                if (x[i] != y[i])
                {
                    return x[i] > y[i];
                }
            }
            return true;
        }

        /**
        One coefficient as SEAL's decoder forms its double: the residues r_j (stride apart)
        composed into X < Q, then X (or, from ceil(Q/2) up, X - Q, word by word as SEAL does) times
        1/scale.
        */
        FHTO_HD double decode_coefficient(const std::uint64_t *residues, std::uint64_t stride, const DecodeTables &t)
        {
            const int L = t.limbs;
            if (L == 1)
            {
                // One prime: the residue is the integer (Q / q = 1, its inverse 1); SEAL's double of it.
                const std::uint64_t x = residues[0];
                if (x >= t.half[0])
                {
                    const std::uint64_t diff = t.modulus[0] - x;
                    return dsub(0.0, diff ? dmul(static_cast<double>(diff), t.inv_scale) : 0.0);
                }
                return dadd(0.0, x ? dmul(static_cast<double>(x), t.inv_scale) : 0.0);
            }
            std::uint64_t x[kMaxWords + 1] = {};
            for (int j = 0; j < L; j++)
            {
                const std::uint64_t q = t.primes[j];
                std::uint64_t a = mul_shoup_lazy(residues[j * stride], t.q_hat_inv[j], t.q_hat_inv_quot[j], q);
                a = a >= q ? a - q : a;
                // x += a * q_hat_j
                std::uint64_t carry = 0;
                for (int w = 0; w < L; w++)
                {
                    const std::uint64_t lo = a * t.q_hat[j * L + w], hi = mulhi64(a, t.q_hat[j * L + w]);
                    std::uint64_t s = x[w] + lo;
                    std::uint64_t c = s < lo;
                    s += carry;
                    c += s < carry;
                    x[w] = s;
                    carry = hi + c;
                }
                x[L] += carry;
            }
            // Reduce below Q (the sum of L terms each below Q is below L Q).
            while (x[L] != 0 || ge_words(x, t.modulus, L))
            {
                std::uint64_t borrow = 0;
                for (int w = 0; w < L; w++)
                {
                    const std::uint64_t d = x[w] - t.modulus[w] - borrow;
                    borrow = (x[w] < t.modulus[w]) || (x[w] == t.modulus[w] && borrow) ? 1 : 0;
                    x[w] = d;
                }
                x[L] -= borrow;
            }
            double res = 0.0, scale = t.inv_scale;
            const double two_pow_64 = 18446744073709551616.0;
            const bool upper = ge_words(x, t.half, L);
            for (int j = 0; j < L; j++, scale = dmul(scale, two_pow_64))
            {
                if (upper)
                {
                    if (x[j] > t.modulus[j])
                    {
                        const std::uint64_t diff = x[j] - t.modulus[j];
                        res = dadd(res, diff ? dmul(static_cast<double>(diff), scale) : 0.0);
                    }
                    else
                    {
                        const std::uint64_t diff = t.modulus[j] - x[j];
                        res = dsub(res, diff ? dmul(static_cast<double>(diff), scale) : 0.0);
                    }
                }
                else
                {
                    res = dadd(res, x[j] ? dmul(static_cast<double>(x[j]), scale) : 0.0);
                }
            }
            return res;
        }

        /** One butterfly of SEAL's forward FFT (transform_to_rev): x, y <- x + y r, x - y r. */
        FHTO_HD void fft_forward_butterfly(Complex &x, Complex &y, Complex r)
        {
            const Complex u = x, v = cmul(y, r);
            x = cadd(u, v);
            y = csub(u, v);
        }

        /** SEAL's transform_to_rev of one polynomial (no scalar), on the host: stage m uses roots[m + i]. */
        inline void fft_forward_host(Complex *values, int log_n, const Complex *roots)
        {
            const std::uint64_t n = std::uint64_t(1) << log_n;
            for (std::uint64_t m = 1, gap = n >> 1; m < n; m <<= 1, gap >>= 1)
            {
                for (std::uint64_t i = 0; i < m; i++)
                {
                    Complex *x = values + 2 * gap * i;
                    for (std::uint64_t j = 0; j < gap; j++)
                    {
                        fft_forward_butterfly(x[j], x[j + gap], roots[m + i]);
                    }
                }
            }
        }
    } // namespace cuda
} // namespace fhto
