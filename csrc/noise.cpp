#include "noise.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include "dispatch.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FHTO_AES_X86 1
#endif

namespace fhto
{
    namespace
    {
        /**
        Writes n keystream blocks to out: AES-256 under the 15 round keys rk of the counter blocks
        (hi, lo), (hi, lo + 1), ..., each half a big-endian number. The caller splits the stream
        where lo would wrap, so lo + n - 1 never does and only the low half is ever incremented.
        */
        using BlocksFn = void (*)(const std::uint8_t *rk, std::uint64_t hi, std::uint64_t lo, std::uint8_t *out,
                                  std::size_t n) noexcept;

#ifdef FHTO_AES_X86
        /** The next even round key of AES-256's schedule from the one two back and keygenassist's output. */
        __attribute__((target("aes"))) inline __m128i next_even(__m128i prev, __m128i assist) noexcept
        {
            // Word 3 of the assist is RotWord(SubWord(w)) ^ rcon of the last word; each key word is
            // the prefix xor of the previous key's words with it.
            assist = _mm_shuffle_epi32(assist, 0xff);
            prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
            prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 8));
            return _mm_xor_si128(prev, assist);
        }

        /** The next odd round key: the same with SubWord alone (word 2 of the assist, rcon 0). */
        __attribute__((target("aes"))) inline __m128i next_odd(__m128i prev, __m128i even) noexcept
        {
            const __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(even, 0x00), 0xaa);
            prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
            prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 8));
            return _mm_xor_si128(prev, assist);
        }

        /** AES-256's key schedule (FIPS 197): the 15 round keys of a 32-byte key, 16 bytes each. */
        __attribute__((target("aes"))) void expand_key(const std::uint8_t key[32], std::uint8_t *rk) noexcept
        {
            __m128i k[15];
            k[0] = _mm_loadu_si128(reinterpret_cast<const __m128i *>(key));
            k[1] = _mm_loadu_si128(reinterpret_cast<const __m128i *>(key + 16));
            // The round constant must be an immediate, so the seven steps are written out.
            k[2] = next_even(k[0], _mm_aeskeygenassist_si128(k[1], 0x01));
            k[3] = next_odd(k[1], k[2]);
            k[4] = next_even(k[2], _mm_aeskeygenassist_si128(k[3], 0x02));
            k[5] = next_odd(k[3], k[4]);
            k[6] = next_even(k[4], _mm_aeskeygenassist_si128(k[5], 0x04));
            k[7] = next_odd(k[5], k[6]);
            k[8] = next_even(k[6], _mm_aeskeygenassist_si128(k[7], 0x08));
            k[9] = next_odd(k[7], k[8]);
            k[10] = next_even(k[8], _mm_aeskeygenassist_si128(k[9], 0x10));
            k[11] = next_odd(k[9], k[10]);
            k[12] = next_even(k[10], _mm_aeskeygenassist_si128(k[11], 0x20));
            k[13] = next_odd(k[11], k[12]);
            k[14] = next_even(k[12], _mm_aeskeygenassist_si128(k[13], 0x40));
            for (int r = 0; r < 15; r++)
            {
                _mm_store_si128(reinterpret_cast<__m128i *>(rk + 16 * r), k[r]);
            }
        }

        // Counters are kept as (lo, hi) little-endian 64-bit lanes, so a 64-bit add increments them;
        // this shuffle reverses a lane's 16 bytes into the big-endian counter block.
#define FHTO_AES_SWAP_BYTES 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0

        /** One block per 128-bit register, 8 in flight to cover the AES unit's latency. */
        __attribute__((target("aes,ssse3"))) void blocks_aesni(
            const std::uint8_t *rk_bytes, std::uint64_t hi, std::uint64_t lo, std::uint8_t *out, std::size_t n) noexcept
        {
            __m128i rk[15];
            for (int r = 0; r < 15; r++)
            {
                rk[r] = _mm_load_si128(reinterpret_cast<const __m128i *>(rk_bytes + 16 * r));
            }
            const __m128i swap = _mm_setr_epi8(FHTO_AES_SWAP_BYTES);
            const __m128i one = _mm_set_epi64x(0, 1);
            __m128i ctr = _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
            std::size_t i = 0;
            for (; i + 8 <= n; i += 8)
            {
                __m128i x[8];
                for (int j = 0; j < 8; j++)
                {
                    x[j] = _mm_xor_si128(_mm_shuffle_epi8(ctr, swap), rk[0]);
                    ctr = _mm_add_epi64(ctr, one);
                }
                for (int r = 1; r < 14; r++)
                {
                    for (int j = 0; j < 8; j++)
                    {
                        x[j] = _mm_aesenc_si128(x[j], rk[r]);
                    }
                }
                for (int j = 0; j < 8; j++)
                {
                    _mm_storeu_si128(reinterpret_cast<__m128i *>(out + 16 * (i + j)), _mm_aesenclast_si128(x[j], rk[14]));
                }
            }
            for (; i < n; i++)
            {
                __m128i x = _mm_xor_si128(_mm_shuffle_epi8(ctr, swap), rk[0]);
                ctr = _mm_add_epi64(ctr, one);
                for (int r = 1; r < 14; r++)
                {
                    x = _mm_aesenc_si128(x, rk[r]);
                }
                _mm_storeu_si128(reinterpret_cast<__m128i *>(out + 16 * i), _mm_aesenclast_si128(x, rk[14]));
            }
        }

        /** Two blocks per 256-bit register, 8 registers (16 blocks) in flight. */
        __attribute__((target("avx2,aes,vaes"))) void blocks_vaes256(
            const std::uint8_t *rk_bytes, std::uint64_t hi, std::uint64_t lo, std::uint8_t *out, std::size_t n) noexcept
        {
            __m256i rk[15];
            for (int r = 0; r < 15; r++)
            {
                rk[r] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i *>(rk_bytes + 16 * r)));
            }
            const __m256i swap = _mm256_setr_epi8(FHTO_AES_SWAP_BYTES, FHTO_AES_SWAP_BYTES);
            const __m256i two = _mm256_setr_epi64x(2, 0, 2, 0);
            __m256i ctr = _mm256_add_epi64(
                _mm256_setr_epi64x(static_cast<long long>(lo), static_cast<long long>(hi), static_cast<long long>(lo),
                                   static_cast<long long>(hi)),
                _mm256_setr_epi64x(0, 0, 1, 0));
            std::size_t i = 0;
            for (; i + 16 <= n; i += 16)
            {
                __m256i x[8];
                for (int j = 0; j < 8; j++)
                {
                    x[j] = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, swap), rk[0]);
                    ctr = _mm256_add_epi64(ctr, two);
                }
                for (int r = 1; r < 14; r++)
                {
                    for (int j = 0; j < 8; j++)
                    {
                        x[j] = _mm256_aesenc_epi128(x[j], rk[r]);
                    }
                }
                for (int j = 0; j < 8; j++)
                {
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + 16 * (i + 2 * j)),
                                        _mm256_aesenclast_epi128(x[j], rk[14]));
                }
            }
            for (; i < n; i += 2)
            {
                __m256i x = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, swap), rk[0]);
                ctr = _mm256_add_epi64(ctr, two);
                for (int r = 1; r < 14; r++)
                {
                    x = _mm256_aesenc_epi128(x, rk[r]);
                }
                x = _mm256_aesenclast_epi128(x, rk[14]);
                if (i + 2 <= n)
                {
                    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + 16 * i), x);
                }
                else
                {
                    _mm_storeu_si128(reinterpret_cast<__m128i *>(out + 16 * i), _mm256_castsi256_si128(x));
                }
            }
        }

        /**
        A 128-bit value in all four lanes. The zero-masking form with every lane kept is the same
        instruction; the plain intrinsic trips GCC 12's -Wuninitialized inside its own header.
        */
        __attribute__((target("avx512f"))) inline __m512i broadcast4(__m128i x) noexcept
        {
            return _mm512_maskz_broadcast_i32x4(static_cast<__mmask16>(0xffff), x);
        }

        /** Four blocks per 512-bit register, 8 registers (32 blocks) in flight. */
        __attribute__((target("avx512f,avx512bw,aes,vaes"))) void blocks_vaes512(
            const std::uint8_t *rk_bytes, std::uint64_t hi, std::uint64_t lo, std::uint8_t *out, std::size_t n) noexcept
        {
            __m512i rk[15];
            for (int r = 0; r < 15; r++)
            {
                rk[r] = broadcast4(_mm_load_si128(reinterpret_cast<const __m128i *>(rk_bytes + 16 * r)));
            }
            const __m512i swap = broadcast4(_mm_setr_epi8(FHTO_AES_SWAP_BYTES));
            const __m512i four = _mm512_setr_epi64(4, 0, 4, 0, 4, 0, 4, 0);
            __m512i ctr = _mm512_add_epi64(
                broadcast4(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo))),
                _mm512_setr_epi64(0, 0, 1, 0, 2, 0, 3, 0));
            std::size_t i = 0;
            for (; i + 32 <= n; i += 32)
            {
                __m512i x[8];
                for (int j = 0; j < 8; j++)
                {
                    x[j] = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, swap), rk[0]);
                    ctr = _mm512_add_epi64(ctr, four);
                }
                for (int r = 1; r < 14; r++)
                {
                    for (int j = 0; j < 8; j++)
                    {
                        x[j] = _mm512_aesenc_epi128(x[j], rk[r]);
                    }
                }
                for (int j = 0; j < 8; j++)
                {
                    _mm512_storeu_si512(out + 16 * (i + 4 * j), _mm512_aesenclast_epi128(x[j], rk[14]));
                }
            }
            for (; i < n; i += 4)
            {
                __m512i x = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, swap), rk[0]);
                ctr = _mm512_add_epi64(ctr, four);
                for (int r = 1; r < 14; r++)
                {
                    x = _mm512_aesenc_epi128(x, rk[r]);
                }
                // The last register may hold blocks past n: store only the wanted 64-bit words.
                const std::size_t left = std::min<std::size_t>(n - i, 4);
                const __mmask8 mask = static_cast<__mmask8>((1u << (2 * left)) - 1);
                _mm512_mask_storeu_epi64(out + 16 * i, mask, _mm512_aesenclast_epi128(x, rk[14]));
            }
        }
#undef FHTO_AES_SWAP_BYTES
#endif

        struct Backend
        {
            BlocksFn fn = nullptr;
            const char *name = "none";
            Backend()
            {
                // FHTO_AES=aesni|vaes256|vaes512 forces a path, or the best below it the CPU has (the
                // tests compare every path with SP 800-38A and each other); none turns the stream off.
                const std::string want = detail::forced_path("FHTO_AES");
                if (want == "none")
                {
                    return;
                }
#ifdef FHTO_AES_X86
                const bool aesni = __builtin_cpu_supports("aes") && __builtin_cpu_supports("ssse3");
                const bool vaes256 = aesni && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vaes");
                const bool vaes512 =
                    vaes256 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
                if (vaes512 && want != "vaes256" && want != "aesni")
                {
                    fn = blocks_vaes512;
                    name = "vaes512";
                }
                else if (vaes256 && want != "aesni")
                {
                    fn = blocks_vaes256;
                    name = "vaes256";
                }
                else if (aesni)
                {
                    fn = blocks_aesni;
                    name = "aesni";
                }
#endif
            }
        };

        const Backend &backend() noexcept
        {
            static const Backend b;
            return b;
        }

        /** The big-endian number whose bytes are the little-endian bytes of w: the seed's counter halves. */
        std::uint64_t big_endian(std::uint64_t w) noexcept
        {
            std::uint64_t v = 0;
            for (int b = 0; b < 8; b++)
            {
                v = (v << 8) | ((w >> (8 * b)) & 0xff);
            }
            return v;
        }

        /** Zeroes secret bytes with stores the compiler may not drop as dead. */
        void wipe(void *p, std::size_t n) noexcept
        {
            volatile std::uint8_t *b = static_cast<volatile std::uint8_t *>(p);
            for (std::size_t i = 0; i < n; i++)
            {
                b[i] = 0;
            }
        }
    } // namespace

    const char *aes_ctr_backend() noexcept
    {
        return backend().name;
    }

    bool AesCtrStream::available() noexcept
    {
        return backend().fn != nullptr;
    }

    AesCtrStream::AesCtrStream(const Seed &seed) noexcept
    {
        // Without the instructions there is no stream to give; zeros would be silent, fatal noise.
        if (!available())
        {
            std::abort();
        }
#ifdef FHTO_AES_X86
        std::uint8_t key[32];
        for (std::size_t i = 0; i < 32; i++)
        {
            key[i] = static_cast<std::uint8_t>(seed[i / 8] >> (8 * (i % 8)));
        }
        expand_key(key, round_keys_);
        wipe(key, sizeof(key));
#endif
        counter_hi_ = big_endian(seed[4]);
        counter_lo_ = big_endian(seed[5]);
    }

    AesCtrStream::~AesCtrStream()
    {
        wipe(round_keys_, sizeof(round_keys_));
        wipe(buffer_, sizeof(buffer_));
        counter_hi_ = 0;
        counter_lo_ = 0;
    }

    void AesCtrStream::blocks(std::uint8_t *out, std::size_t blocks) noexcept
    {
        const BlocksFn fn = backend().fn;
        while (blocks)
        {
            // Blocks before the low half wraps: 2^64 - lo, or all of them when lo is 0.
            const std::uint64_t to_wrap = 0 - counter_lo_;
            const std::size_t now = counter_lo_ != 0 && blocks > to_wrap ? static_cast<std::size_t>(to_wrap) : blocks;
            fn(round_keys_, counter_hi_, counter_lo_, out, now);
            counter_lo_ += now;
            if (counter_lo_ == 0)
            {
                counter_hi_++;
            }
            out += 16 * now;
            blocks -= now;
        }
    }

    void AesCtrStream::generate(std::uint8_t *out, std::size_t count) noexcept
    {
        // Leftover keystream first, then whole blocks straight into out, then a fresh buffer for the tail.
        const std::size_t buffered = std::min(count, kBufferBytes - head_);
        if (buffered)
        {
            std::memcpy(out, buffer_ + head_, buffered);
            head_ += buffered;
            out += buffered;
            count -= buffered;
        }
        const std::size_t whole = count / 16;
        if (whole)
        {
            blocks(out, whole);
            out += 16 * whole;
            count -= 16 * whole;
        }
        if (count)
        {
            blocks(buffer_, kBufferBlocks);
            std::memcpy(out, buffer_, count);
            head_ = count;
        }
    }
} // namespace fhto
