#pragma once

// CKKS encoding as SEAL's CKKSEncoder does it, shared by the GPU kernels and their host driver:
// the slots scattered by SEAL's index map (each value and its conjugate), SEAL's inverse FFT
// (transform_from_rev) with the scale folded into its last stage, then each coefficient rounded
// half away from zero and reduced exactly modulo every prime. Floating-point operations are
// written one by one and never fused into FMAs (__dmul_rn/__dadd_rn on the device; the host file
// is compiled with -ffp-contract=off), so the device computes the very doubles SEAL computes.

#include <cmath>
#include <cstdint>
#include <cstring>
#include "cuda/arith.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        FHTO_HD double dmul(double a, double b)
        {
#if defined(__CUDA_ARCH__)
            return __dmul_rn(a, b);
#else
            return a * b;
#endif
        }

        FHTO_HD double dadd(double a, double b)
        {
#if defined(__CUDA_ARCH__)
            return __dadd_rn(a, b);
#else
            return a + b;
#endif
        }

        FHTO_HD double dsub(double a, double b)
        {
#if defined(__CUDA_ARCH__)
            return __dsub_rn(a, b);
#else
            return a - b;
#endif
        }

        /** A complex double laid out as std::complex<double> (real, imaginary). */
        struct Complex
        {
            double re;
            double im;
        };

        FHTO_HD Complex cadd(Complex a, Complex b)
        {
            return { dadd(a.re, b.re), dadd(a.im, b.im) };
        }

        FHTO_HD Complex csub(Complex a, Complex b)
        {
            return { dsub(a.re, b.re), dsub(a.im, b.im) };
        }

        /** std::complex<double>'s product for finite operands: (ac - bd, ad + bc). */
        FHTO_HD Complex cmul(Complex a, Complex b)
        {
            return { dsub(dmul(a.re, b.re), dmul(a.im, b.im)), dadd(dmul(a.re, b.im), dmul(a.im, b.re)) };
        }

        FHTO_HD Complex cscale(Complex a, double s)
        {
            return { dmul(a.re, s), dmul(a.im, s) };
        }

        /** One butterfly of SEAL's inverse FFT (transform_from_rev): x, y <- x + y, (x - y) r. */
        FHTO_HD void fft_inverse_butterfly(Complex &x, Complex &y, Complex r)
        {
            const Complex u = x, v = y;
            x = cadd(u, v);
            y = cmul(csub(u, v), r);
        }

        /** Its last stage, with the scale s folded in: x, y <- (x + y) s, (x - y) (r s). */
        FHTO_HD void fft_inverse_last(Complex &x, Complex &y, Complex scaled_r, double s)
        {
            const Complex u = x, v = y;
            x = cscale(cadd(u, v), s);
            y = cmul(csub(u, v), scaled_r);
        }

        /**
        What encoding needs, as plain arrays (host or device memory): n = 2^log_n coefficients,
        SEAL's matrix_reps_index_map_ (n entries) and inv_root_powers_ (n entries), and
        fix = scale / n.
        */
        struct EncodeTables
        {
            int log_n = 0;
            const std::uint64_t *index_map = nullptr;
            const Complex *inv_roots = nullptr;
            double fix = 0;
        };

        /**
        Slot i of ciphertext `ct` of a flat update (two values per slot: real, imaginary; zero past
        the end), times the weight, scattered as SEAL scatters it: the value at index_map[i] and
        its conjugate at index_map[i + n/2].
        */
        template <typename T>
        FHTO_HD void scatter_slot(
            const T *values, std::uint64_t count, std::uint64_t ct, std::uint64_t i, double weight,
            const EncodeTables &t, Complex *work)
        {
            const std::uint64_t n = std::uint64_t(1) << t.log_n, slots = n >> 1;
            const std::uint64_t first = ct * n + 2 * i;
            const double re = first < count ? dmul(weight, static_cast<double>(values[first])) : 0.0;
            const double im = first + 1 < count ? dmul(weight, static_cast<double>(values[first + 1])) : 0.0;
            work[t.index_map[i]] = Complex{ re, im };
            work[t.index_map[i + slots]] = Complex{ re, -im };
        }

        /** Where the roots of the inverse FFT's stage with m blocks start (SEAL reads them in order). */
        FHTO_HD std::uint64_t fft_inverse_root_offset(std::uint64_t n, std::uint64_t m)
        {
            // Stages m = n/2, n/4, ..., 2 use n/2 + n/4 + ... + 2m roots before this one, from index 1.
            return 1 + (n - 2 * m);
        }

        /** SEAL's transform_from_rev of one polynomial with scalar = fix, on the host. */
        inline void fft_inverse_host(Complex *values, const EncodeTables &t)
        {
            const std::uint64_t n = std::uint64_t(1) << t.log_n;
            std::uint64_t gap = 1, m = n >> 1;
            for (; m > 1; m >>= 1, gap <<= 1)
            {
                const Complex *roots = t.inv_roots + fft_inverse_root_offset(n, m);
                for (std::uint64_t i = 0; i < m; i++)
                {
                    Complex *x = values + 2 * gap * i;
                    for (std::uint64_t j = 0; j < gap; j++)
                    {
                        fft_inverse_butterfly(x[j], x[j + gap], roots[i]);
                    }
                }
            }
            const Complex scaled_r = cscale(t.inv_roots[fft_inverse_root_offset(n, 1)], t.fix);
            for (std::uint64_t j = 0; j < gap; j++)
            {
                fft_inverse_last(values[j], values[j + gap], scaled_r, t.fix);
            }
        }

        FHTO_HD bool sign_bit(double x)
        {
#if defined(__CUDA_ARCH__)
            return __double_as_longlong(x) < 0;
#else
            std::int64_t bits;
            std::memcpy(&bits, &x, sizeof(bits));
            return bits < 0;
#endif
        }

        /**
        One encoded coefficient as SEAL stores it modulo q: x rounded half away from zero, the
        exact integer reduced modulo q, negated modulo q when negative. SEAL splits the integer into
        64-bit words and reduces those; the residue of an integer is unique, so reducing
        mantissa * 2^e directly gives the same word. x is finite (the values were checked).
        */
        FHTO_HD std::uint64_t coefficient_residue(double x, const UniformPrime &p)
        {
            const double r = ::round(x);
            const bool negative = sign_bit(r);
            const double a = ::fabs(r);
            std::uint64_t residue;
            if (a < 18446744073709551616.0)
            {
                residue = barrett_reduce(static_cast<std::uint64_t>(a), p);
            }
            else
            {
                int e = 0;
                const double m = ::frexp(a, &e); // a = m 2^e, m in [0.5, 1): a = mantissa 2^(e - 53)
                residue = barrett_reduce(static_cast<std::uint64_t>(::ldexp(m, 53)), p);
                for (int k = 0; k < e - 53; k++)
                {
                    residue <<= 1; // q < 2^62: no overflow
                    residue = residue >= p.q ? residue - p.q : residue;
                }
            }
            return negative ? (residue ? p.q - residue : 0) : residue;
        }
    } // namespace cuda
} // namespace fhto
