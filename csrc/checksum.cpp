#include "checksum.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include "dispatch.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_HAVE_X86_CRC 1
#include <immintrin.h>
#endif

namespace fhto
{
    namespace detail
    {
        constexpr std::uint32_t kPoly = 0x82F63B78u; // reflected Castagnoli polynomial

        /*
        Arithmetic mod P on reflected values: bit i of a 32-bit value is the coefficient of
        x^(31 - i), so the message's first bit is its highest power. The faster paths skip
        distances by multiplying with x^k mod P; these compute those constants at compile time.
        */

        /** a * b mod P. */
        constexpr std::uint32_t mul_mod(std::uint32_t a, std::uint32_t b) noexcept
        {
            std::uint32_t r = 0;
            for (int i = 0; i < 32; i++)
            {
                r = (r & 1) ? (r >> 1) ^ kPoly : r >> 1; // r *= x
                if ((a >> i) & 1)
                {
                    r ^= b;
                }
            }
            return r;
        }

        /** base^e mod P. */
        constexpr std::uint32_t pow_mod(std::uint32_t base, std::uint64_t e) noexcept
        {
            std::uint32_t r = 0x80000000u; // 1
            for (; e; e >>= 1)
            {
                if (e & 1)
                {
                    r = mul_mod(r, base);
                }
                base = mul_mod(base, base);
            }
            return r;
        }

        /** x^k mod P for k >= 0, or x^-k' for k = -k' (x is invertible: P's constant term is 1). */
        constexpr std::uint32_t x_pow(long long k) noexcept
        {
            constexpr std::uint32_t x = 0x40000000u, inverse_x = (kPoly << 1) | 1u; // (P - 1) / x
            return k >= 0 ? pow_mod(x, static_cast<std::uint64_t>(k)) : pow_mod(inverse_x, static_cast<std::uint64_t>(-k));
        }

        static_assert(x_pow(32) == kPoly, "x^32 mod P is P's low terms");
        static_assert(mul_mod(x_pow(-33), x_pow(40)) == x_pow(7), "x^-1 is the inverse of x");

        struct Tables
        {
            std::array<std::array<std::uint32_t, 256>, 8> t{};
            Tables()
            {
                for (std::uint32_t i = 0; i < 256; i++)
                {
                    std::uint32_t c = i;
                    for (int k = 0; k < 8; k++)
                    {
                        c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
                    }
                    t[0][i] = c;
                }
                for (std::size_t s = 1; s < 8; s++)
                {
                    for (std::size_t i = 0; i < 256; i++)
                    {
                        t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
                    }
                }
            }
        };

        std::uint32_t crc32c_table(const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            static const Tables tables;
            const auto &t = tables.t;
            crc = ~crc;
            while (n >= 8)
            {
                std::uint64_t word;
                std::memcpy(&word, p, 8);
                word ^= crc;
                crc = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
                      t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
                      t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
                p += 8;
                n -= 8;
            }
            while (n--)
            {
                crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
            }
            return ~crc;
        }

#ifdef FHTO_HAVE_X86_CRC
        /*
        The crc32 instruction maps the register r (the running CRC, not inverted) and a word w to
        (r * x^64 + w * x^32) mod P. The paths below keep several registers going at once and
        combine them with carry-less multiplies; all of them end on that instruction.
        */

        inline std::uint64_t load64(const unsigned char *p) noexcept
        {
            std::uint64_t word;
            std::memcpy(&word, p, 8);
            return word;
        }

        /** Runs the register over n bytes, one instruction chain. */
        __attribute__((target("sse4.2"))) inline std::uint64_t sse42_run(
            std::uint64_t c, const unsigned char *p, std::size_t n) noexcept
        {
            for (; n >= 8; p += 8, n -= 8)
            {
                c = __builtin_ia32_crc32di(c, load64(p));
            }
            auto c32 = static_cast<std::uint32_t>(c);
            if (n & 4)
            {
                std::uint32_t word;
                std::memcpy(&word, p, 4);
                c32 = __builtin_ia32_crc32si(c32, word);
                p += 4;
            }
            if (n & 2)
            {
                std::uint16_t half;
                std::memcpy(&half, p, 2);
                c32 = __builtin_ia32_crc32hi(c32, half);
                p += 2;
            }
            if (n & 1)
            {
                c32 = __builtin_ia32_crc32qi(c32, *p);
            }
            return c32;
        }

        __attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            return ~static_cast<std::uint32_t>(sse42_run(~crc, p, n));
        }

        /*
        Moving a register r over m bytes means r * x^(8m). The carry-less product of two reflected
        32-bit values carries one extra x, and the crc32 instruction over a 64-bit word multiplies
        by x^32, so with u = x^(8m - 33) the instruction over the product r * u gives r * x^(8m).
        Products for several registers can be xored before that one instruction, or xored into
        the last word of a chain that is still running.
        */

        /** r * u as the 64-bit word the crc32 instruction then reduces. */
        __attribute__((target("sse4.2,pclmul"))) inline __m128i times(std::uint64_t r, std::uint32_t u) noexcept
        {
            return _mm_clmulepi64_si128(_mm_cvtsi64_si128(static_cast<long long>(r)), _mm_cvtsi32_si128(static_cast<int>(u)), 0x00);
        }

        /**
        x^(8 (S - 1 - j) L - 33) mod P: moves chain j of S chains of L bytes to the end of the last;
        u[S - 1] moves the incoming register over all S * L bytes.
        */
        template <std::size_t S, std::size_t L>
        struct ChainShifts
        {
            std::uint32_t u[S]{};
            constexpr ChainShifts()
            {
                for (std::size_t j = 0; j + 1 < S; j++)
                {
                    u[j] = x_pow(static_cast<long long>(8 * (S - 1 - j) * L) - 33);
                }
                u[S - 1] = x_pow(static_cast<long long>(8 * S * L) - 33);
            }
        };

        /** One word into each of the chains J, which start L bytes apart (p is chain 0's word). */
        template <std::size_t L, std::size_t... J>
        __attribute__((target("sse4.2"))) inline void chains_step(
            std::uint64_t *r, const unsigned char *p, std::index_sequence<J...>) noexcept
        {
            ((r[J] = __builtin_ia32_crc32di(r[J], load64(p + J * L))), ...);
        }

        /**
        S chains over adjacent L-byte pieces, combined into the register after all S * L bytes.
        Every chain starts from 0 and the incoming register joins at the end, so only the final
        instruction waits for the previous block.
        */
        template <std::size_t S, std::size_t L>
        __attribute__((target("sse4.2,pclmul"))) inline std::uint64_t chains_block(
            std::uint64_t c, const unsigned char *p) noexcept
        {
            static_assert(L % 8 == 0 && L >= 16, "whole words");
            static constexpr ChainShifts<S, L> shifts{};
            std::uint64_t r[S] = {};
            for (std::size_t i = 0; i < L - 8; i += 8)
            {
                chains_step<L>(r, p + i, std::make_index_sequence<S>());
            }
            chains_step<L>(r, p + L - 8, std::make_index_sequence<S - 1>());
            __m128i moved = times(c, shifts.u[S - 1]);
            for (std::size_t j = 0; j + 1 < S; j++)
            {
                moved = _mm_xor_si128(moved, times(r[j], shifts.u[j]));
            }
            const auto last = load64(p + S * L - 8) ^ static_cast<std::uint64_t>(_mm_cvtsi128_si64(moved));
            return __builtin_ia32_crc32di(r[S - 1], last);
        }

        /*
        Eight chains in blocks of 1 KiB (then 256 and 128 bytes): the instruction's latency is three
        cycles and recent cores issue two or more a cycle. Small blocks unroll completely and, as
        only their last instruction waits for the previous block, neighbouring blocks overlap.
        */
        constexpr std::size_t kChains = 8;

        /** As many blocks of kChains * L bytes as fit. */
        template <std::size_t L>
        __attribute__((target("sse4.2,pclmul"))) inline std::uint64_t chains_blocks(
            std::uint64_t c, const unsigned char *&p, std::size_t &n) noexcept
        {
            for (; n >= kChains * L; p += kChains * L, n -= kChains * L)
            {
                c = chains_block<kChains, L>(c, p);
            }
            return c;
        }

        __attribute__((target("sse4.2,pclmul"))) std::uint64_t chains_run(
            std::uint64_t c, const unsigned char *p, std::size_t n) noexcept
        {
            c = chains_blocks<128>(c, p, n);
            c = chains_blocks<32>(c, p, n);
            c = chains_blocks<16>(c, p, n);
            return sse42_run(c, p, n);
        }

        __attribute__((target("sse4.2,pclmul"))) std::uint32_t crc32c_sse42x8(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            return ~static_cast<std::uint32_t>(chains_run(~crc, p, n));
        }

        /*
        Folding: a 16-byte lane loaded little-endian holds 128 message bits, the first in bit 0,
        so its low half H carries the higher powers (lane = H * x^64 + L). Moving the lane D bytes
        on multiplies it by x^(8D); with the extra x of each carry-less product, H is multiplied
        by x^(8D + 63) mod P and L by x^(8D - 1) mod P (32-bit constants in the high halves of
        64-bit words). The sum fits in 128 bits and xors straight into the lane D bytes on. The
        crc32 instruction over the last lane's 16 bytes, from 0, reduces it to a register.
        */
        constexpr std::uint64_t fold_high(std::size_t bytes) noexcept
        {
            return static_cast<std::uint64_t>(x_pow(static_cast<long long>(8 * bytes) + 63)) << 32;
        }

        constexpr std::uint64_t fold_low(std::size_t bytes) noexcept
        {
            return static_cast<std::uint64_t>(x_pow(static_cast<long long>(8 * bytes) - 1)) << 32;
        }

        /** The register over the 16 message bytes of a lane. */
        __attribute__((target("sse4.2"))) inline std::uint64_t reduce_lane(__m128i lane) noexcept
        {
            const auto c = __builtin_ia32_crc32di(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(lane)));
            return __builtin_ia32_crc32di(c, static_cast<std::uint64_t>(_mm_extract_epi64(lane, 1)));
        }

        /** Runs the register up to the next multiple of `align` in memory (the vector loads are aligned). */
        __attribute__((target("sse4.2"))) inline std::uint64_t align_start(
            std::uint64_t c, const unsigned char *&p, std::size_t &n, std::size_t align) noexcept
        {
            const std::size_t head = (align - reinterpret_cast<std::uintptr_t>(p) % align) % align;
            c = sse42_run(c, p, head);
            p += head;
            n -= head;
            return c;
        }

#define FHTO_CRC_TARGET_256 "sse4.2,pclmul,avx2,vpclmulqdq"

        __attribute__((target(FHTO_CRC_TARGET_256))) inline __m256i load256(const unsigned char *p) noexcept
        {
            return _mm256_load_si256(reinterpret_cast<const __m256i *>(p));
        }

        __attribute__((target(FHTO_CRC_TARGET_256))) inline __m256i fold256(__m256i x, __m256i k, __m256i data) noexcept
        {
            return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), _mm256_clmulepi64_epi128(x, k, 0x11)), data);
        }

        template <std::size_t D>
        __attribute__((target(FHTO_CRC_TARGET_256))) inline __m256i constants256() noexcept
        {
            constexpr auto high = static_cast<long long>(fold_high(D)), low = static_cast<long long>(fold_low(D));
            return _mm256_set_epi64x(low, high, low, high);
        }

        /** Four 32-byte accumulators (eight lanes) fold 128 bytes a step. */
        __attribute__((target(FHTO_CRC_TARGET_256))) std::uint32_t crc32c_vpclmul256(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            if (n < 512)
            {
                return crc32c_sse42x8(p, n, crc);
            }
            const std::uint64_t c = align_start(~crc, p, n, 32);
            __m256i x0 = _mm256_xor_si256(load256(p), _mm256_zextsi128_si256(_mm_cvtsi32_si128(static_cast<int>(c))));
            __m256i x1 = load256(p + 32), x2 = load256(p + 64), x3 = load256(p + 96);
            p += 128;
            n -= 128;
            const __m256i k128 = constants256<128>();
            for (; n >= 128; p += 128, n -= 128)
            {
                x0 = fold256(x0, k128, load256(p));
                x1 = fold256(x1, k128, load256(p + 32));
                x2 = fold256(x2, k128, load256(p + 64));
                x3 = fold256(x3, k128, load256(p + 96));
            }
            const __m256i k32 = constants256<32>();
            __m256i x = fold256(fold256(fold256(x0, k32, x1), k32, x2), k32, x3);
            for (; n >= 32; p += 32, n -= 32)
            {
                x = fold256(x, k32, load256(p));
            }
            constexpr auto high = static_cast<long long>(fold_high(16)), low = static_cast<long long>(fold_low(16));
            const __m128i k16 = _mm_set_epi64x(low, high);
            const __m128i first = _mm256_castsi256_si128(x);
            const __m128i lane = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(first, k16, 0x00), _mm_clmulepi64_si128(first, k16, 0x11)),
                                               _mm256_extracti128_si256(x, 1));
            return ~static_cast<std::uint32_t>(sse42_run(reduce_lane(lane), p, n));
        }

#define FHTO_CRC_TARGET_512 "sse4.2,pclmul,avx2,avx512f,vpclmulqdq"

        __attribute__((target(FHTO_CRC_TARGET_512))) inline __m512i load512(const unsigned char *p) noexcept
        {
            return _mm512_load_si512(p);
        }

        __attribute__((target(FHTO_CRC_TARGET_512))) inline __m512i fold512(__m512i x, __m512i k, __m512i data) noexcept
        {
            return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), data, 0x96);
        }

        template <std::size_t D>
        __attribute__((target(FHTO_CRC_TARGET_512))) inline __m512i constants512() noexcept
        {
            constexpr auto high = static_cast<long long>(fold_high(D)), low = static_cast<long long>(fold_low(D));
            return _mm512_set4_epi64(low, high, low, high);
        }

        /** The first 64 bytes with the register xored into the message's first 4 (how a CRC continues). */
        __attribute__((target(FHTO_CRC_TARGET_512))) inline __m512i load_first512(const unsigned char *p, std::uint64_t c) noexcept
        {
            return _mm512_xor_si512(load512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(c))));
        }

        /** Four accumulators of 64 adjacent bytes folded into the last. */
        __attribute__((target(FHTO_CRC_TARGET_512))) inline __m512i merge512(__m512i x0, __m512i x1, __m512i x2, __m512i x3) noexcept
        {
            return fold512(x0, constants512<192>(), fold512(x1, constants512<128>(), fold512(x2, constants512<64>(), x3)));
        }

        /** The register over the 64 message bytes of an accumulator: lanes 0..2 move 48, 32 and 16 bytes on to lane 3. */
        __attribute__((target(FHTO_CRC_TARGET_512))) inline std::uint64_t reduce512(__m512i x) noexcept
        {
            constexpr std::uint64_t k16[] = { fold_high(16), fold_low(16) }, k32[] = { fold_high(32), fold_low(32) },
                                    k48[] = { fold_high(48), fold_low(48) };
            const __m512i k = _mm512_set_epi64(0, 0, static_cast<long long>(k16[1]), static_cast<long long>(k16[0]), static_cast<long long>(k32[1]),
                                               static_cast<long long>(k32[0]), static_cast<long long>(k48[1]), static_cast<long long>(k48[0]));
            alignas(64) std::uint64_t w[8];
            _mm512_store_si512(w, fold512(x, k, _mm512_maskz_mov_epi64(0xC0, x)));
            const auto c = __builtin_ia32_crc32di(0, w[0] ^ w[2] ^ w[4] ^ w[6]);
            return __builtin_ia32_crc32di(c, w[1] ^ w[3] ^ w[5] ^ w[7]);
        }

        /** Four 64-byte accumulators (sixteen lanes) fold 256 bytes a step. */
        __attribute__((target(FHTO_CRC_TARGET_512))) std::uint32_t crc32c_vpclmul512(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            if (n < 1024)
            {
                return crc32c_sse42x8(p, n, crc);
            }
            const std::uint64_t c = align_start(~crc, p, n, 64);
            __m512i x0 = load_first512(p, c), x1 = load512(p + 64), x2 = load512(p + 128), x3 = load512(p + 192);
            p += 256;
            n -= 256;
            const __m512i k256 = constants512<256>();
            for (; n >= 256; p += 256, n -= 256)
            {
                x0 = fold512(x0, k256, load512(p));
                x1 = fold512(x1, k256, load512(p + 64));
                x2 = fold512(x2, k256, load512(p + 128));
                x3 = fold512(x3, k256, load512(p + 192));
            }
            __m512i x = merge512(x0, x1, x2, x3);
            const __m512i k64 = constants512<64>();
            for (; n >= 64; p += 64, n -= 64)
            {
                x = fold512(x, k64, load512(p));
            }
            return ~static_cast<std::uint32_t>(sse42_run(reduce512(x), p, n));
        }

        /*
        The hybrid path runs the vector folding and six crc32 chains at once: they use different
        execution units, and on cores that issue two crc32 a cycle each side takes about half the
        bytes. Its chains end at run-time offsets, so it moves their registers with
        u = x^(8m - 33) built from two tables indexed by the low and high bytes of m (the product
        of two such u adds their byte counts).
        */
        struct ShiftTable
        {
            std::uint32_t low[256]{};
            std::uint32_t high[256]{};
            constexpr ShiftTable()
            {
                low[0] = high[0] = x_pow(-33);
                const std::uint32_t step_low = x_pow(8), step_high = x_pow(8 * 256);
                for (std::size_t i = 1; i < 256; i++)
                {
                    low[i] = mul_mod(low[i - 1], step_low);
                    high[i] = mul_mod(high[i - 1], step_high);
                }
            }
        };

        constexpr ShiftTable kShifts{};

        static_assert(kShifts.low[255] == x_pow(8 * 255 - 33) && kShifts.high[255] == x_pow(8 * 255 * 256 - 33), "shift tables");

        /** x^(8m - 33) mod P for m < 65536. */
        __attribute__((target("sse4.2,pclmul"))) inline std::uint32_t shift_for(std::size_t m) noexcept
        {
            const __m128i product = times(kShifts.low[m & 0xFF], kShifts.high[m >> 8]);
            return static_cast<std::uint32_t>(__builtin_ia32_crc32di(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(product))));
        }

        /*
        Per step the vector side folds 256 bytes (eight carry-less multiplies) while each of six
        chains takes 40 bytes (more chains run out of registers); the chains' start addresses come
        from two cursors and the chain length so that the loop keeps its registers.
        */
        constexpr std::size_t kHybridChains = 6;
        constexpr std::size_t kHybridWord = 40;
        constexpr std::size_t kHybridStep = 256 + kHybridChains * kHybridWord;

        template <std::size_t J>
        inline const unsigned char *chain_at(const unsigned char *p0, const unsigned char *p3, std::size_t length) noexcept
        {
            static_assert(J < 6, "two cursors reach six chains");
            return J < 3 ? p0 + J * length : p3 + (J - 3) * length;
        }

        template <std::size_t... J>
        __attribute__((target("sse4.2"))) inline void hybrid_word(
            std::uint64_t *r, const unsigned char *p0, const unsigned char *p3, std::size_t length, std::index_sequence<J...>) noexcept
        {
            ((r[J] = __builtin_ia32_crc32di(r[J], load64(chain_at<J>(p0, p3, length)))), ...);
        }

        template <std::size_t... K>
        __attribute__((target("sse4.2"))) inline void hybrid_words(
            std::uint64_t *r, const unsigned char *p0, const unsigned char *p3, std::size_t length, std::index_sequence<K...>) noexcept
        {
            (hybrid_word(r, p0 + 8 * K, p3 + 8 * K, length, std::make_index_sequence<kHybridChains>()), ...);
        }

        /**
        The register over n bytes, kHybridStep <= n < 65536, p 64-aligned. Layout: the vector
        part (q steps of 256 bytes plus up to seven 64-byte blocks, folded first), then the six
        chains of q * kHybridWord bytes, then under 64 bytes that the last chain finishes.
        */
        __attribute__((target(FHTO_CRC_TARGET_512))) std::uint64_t hybrid_run(
            std::uint64_t c, const unsigned char *p, std::size_t n) noexcept
        {
            const std::size_t q = n / kHybridStep, rest = n % kHybridStep;
            const std::size_t blocks = rest / 64, tail = rest % 64;
            const std::size_t vector_bytes = 64 * blocks + 256 * q, length = kHybridWord * q;
            const unsigned char *const chains = p + vector_bytes;
            std::uint32_t u[kHybridChains];
            u[0] = shift_for(n - vector_bytes);
            for (std::size_t j = 1; j < kHybridChains; j++)
            {
                u[j] = shift_for((kHybridChains - j) * length + tail);
            }

            const __m512i k64 = constants512<64>();
            __m512i x0 = load_first512(p, c);
            for (std::size_t b = 0; b < blocks; b++)
            {
                p += 64;
                x0 = fold512(x0, k64, load512(p));
            }
            __m512i x1 = load512(p + 64), x2 = load512(p + 128), x3 = load512(p + 192);
            p += 256;
            std::uint64_t r[kHybridChains] = {};
            const unsigned char *p0 = chains, *p3 = chains + 3 * length;
            hybrid_words(r, p0, p3, length, std::make_index_sequence<kHybridWord / 8>());
            const __m512i k256 = constants512<256>();
            for (std::size_t step = 1; step < q; step++)
            {
                x0 = fold512(x0, k256, load512(p));
                x1 = fold512(x1, k256, load512(p + 64));
                x2 = fold512(x2, k256, load512(p + 128));
                x3 = fold512(x3, k256, load512(p + 192));
                p += 256;
                p0 += kHybridWord;
                p3 += kHybridWord;
                hybrid_words(r, p0, p3, length, std::make_index_sequence<kHybridWord / 8>());
            }
            r[kHybridChains - 1] = sse42_run(r[kHybridChains - 1], chains + kHybridChains * length, tail);

            __m128i moved = times(reduce512(merge512(x0, x1, x2, x3)), u[0]);
            for (std::size_t j = 0; j + 1 < kHybridChains; j++)
            {
                moved = _mm_xor_si128(moved, times(r[j], u[j + 1]));
            }
            return r[kHybridChains - 1] ^ __builtin_ia32_crc32di(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(moved)));
        }

        __attribute__((target(FHTO_CRC_TARGET_512))) std::uint32_t crc32c_hybrid512(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            if (n < 4096)
            {
                return crc32c_sse42x8(p, n, crc); // faster below this where the hybrid pays
            }
            std::uint64_t c = align_start(~crc, p, n, 64);
            for (; n >= 65536; p += 61440, n -= 61440)
            {
                c = hybrid_run(c, p, 61440);
            }
            return ~static_cast<std::uint32_t>(hybrid_run(c, p, n));
        }
#endif

        using CrcFn = std::uint32_t (*)(const unsigned char *, std::size_t, std::uint32_t) noexcept;

        /** The paths, fastest first; a forced path the CPU lacks falls to the next one it has. */
        constexpr const char *kPaths[] = { "hybrid512", "vpclmul512", "vpclmul256", "sse42x8", "sse42", "table" };
        constexpr std::size_t kPathCount = sizeof(kPaths) / sizeof(kPaths[0]);

        struct Backend
        {
            CrcFn fn = crc32c_table;
            const char *name = "table";
            Backend()
            {
                // FHTO_CRC=<one of kPaths> forces a path (the tests compare every path with a reference).
                const std::string want = detail::forced_path("FHTO_CRC");
                std::size_t start = 0;
                while (start < kPathCount && want != kPaths[start])
                {
                    start++;
                }
#ifdef FHTO_HAVE_X86_CRC
                const bool sse42 = __builtin_cpu_supports("sse4.2");
                const bool pclmul = sse42 && __builtin_cpu_supports("pclmul");
                const bool vpclmul = pclmul && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq");
                const bool avx512 = vpclmul && __builtin_cpu_supports("avx512f");
                if (start == kPathCount)
                {
                    // Unset or unknown: the fastest the CPU has. The hybrid pays where crc32 issues
                    // two or more a cycle (AMD's recent cores); where it issues one its chains hold
                    // back the vector side, so other CPUs start at plain folding.
                    start = __builtin_cpu_is("amd") ? 0 : 1;
                }
                const bool have[] = { avx512, avx512, vpclmul, pclmul, sse42, true };
                const CrcFn fns[] = { crc32c_hybrid512, crc32c_vpclmul512, crc32c_vpclmul256, crc32c_sse42x8, crc32c_sse42, crc32c_table };
                while (!have[start])
                {
                    start++;
                }
                fn = fns[start];
                name = kPaths[start];
#endif
            }
        };

        const Backend &backend() noexcept
        {
            static const Backend b;
            return b;
        }
    } // namespace detail

    std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc) noexcept
    {
        return detail::backend().fn(static_cast<const unsigned char *>(data), size, crc);
    }

    const char *crc32c_backend() noexcept
    {
        return detail::backend().name;
    }
} // namespace fhto
