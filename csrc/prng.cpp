#include "prng.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include "seal/util/blake2.h"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FHTO_X86_SIMD 1
#endif

namespace fhto
{
    namespace
    {
        constexpr std::uint64_t kIV[8] = { 0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
                                           0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
                                           0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL };

        constexpr std::uint8_t kSigma[12][16] = {
            { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }, { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
            { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 }, { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
            { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 }, { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
            { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 }, { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
            { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 }, { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
            { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 }, { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 }
        };

// BLAKE2b's twelve rounds over a working vector v and message m, for any G (scalar or SIMD).
#define FHTO_BLAKE2B_ROUNDS(G)                    \
    for (int r = 0; r < 12; r++)                  \
    {                                             \
        const std::uint8_t *s = kSigma[r];        \
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);         \
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);         \
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);        \
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);        \
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);        \
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);      \
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);       \
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);       \
    }

        inline std::uint64_t rotr(std::uint64_t x, int n) noexcept
        {
            return (x >> n) | (x << (64 - n));
        }

        /** One BLAKE2b compression of a 128-byte block m (as 16 words) into h. */
        void compress(std::uint64_t h[8], const std::uint64_t m[16], std::uint64_t t0, bool last) noexcept
        {
            std::uint64_t v[16];
            for (int i = 0; i < 8; i++)
            {
                v[i] = h[i];
                v[i + 8] = kIV[i];
            }
            v[12] ^= t0;
            if (last)
            {
                v[14] = ~v[14];
            }
            auto g = [&v](int a, int b, int c, int d, std::uint64_t x, std::uint64_t y) {
                v[a] = v[a] + v[b] + x;
                v[d] = rotr(v[d] ^ v[a], 32);
                v[c] = v[c] + v[d];
                v[b] = rotr(v[b] ^ v[c], 24);
                v[a] = v[a] + v[b] + y;
                v[d] = rotr(v[d] ^ v[a], 16);
                v[c] = v[c] + v[d];
                v[b] = rotr(v[b] ^ v[c], 63);
            };
            FHTO_BLAKE2B_ROUNDS(g);
            for (int i = 0; i < 8; i++)
            {
                h[i] ^= v[i] ^ v[i + 8];
            }
        }

        inline void store_words(std::uint8_t *out, const std::uint64_t *w, int count) noexcept
        {
            for (int i = 0; i < count; i++)
            {
                for (int b = 0; b < 8; b++)
                {
                    out[8 * i + b] = static_cast<std::uint8_t>(w[i] >> (8 * b));
                }
            }
        }

        // Parameter-block words of blake2xb's leaves (digest 64, leaf_length 64, inner_length 64,
        // xof_length 4096); only word 1's low half, the node offset, differs between leaves.
        constexpr std::uint64_t kLeafP0 = 64ULL | (64ULL << 32);
        constexpr std::uint64_t kLeafP1 = static_cast<std::uint64_t>(Blake2xbStream::kBlockBytes) << 32;
        constexpr std::uint64_t kLeafP2 = 64ULL << 8;

        void leaves_scalar(const std::uint64_t root[8], std::uint8_t *out) noexcept
        {
            std::uint64_t m[16] = {};
            std::memcpy(m, root, 64);
            for (std::uint64_t i = 0; i < Blake2xbStream::kBlockBytes / 64; i++)
            {
                std::uint64_t h[8];
                std::memcpy(h, kIV, sizeof(h));
                h[0] ^= kLeafP0;
                h[1] ^= kLeafP1 | i;
                h[2] ^= kLeafP2;
                compress(h, m, 64, true);
                store_words(out + 64 * i, h, 8);
            }
        }

#ifdef FHTO_X86_SIMD
        __attribute__((target("avx2"))) void leaves_avx2(const std::uint64_t root[8], std::uint8_t *out) noexcept
        {
            const __m256i r24 = _mm256_setr_epi8(
                3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
            const __m256i r16 = _mm256_setr_epi8(
                2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
            __m256i m[16];
            for (int j = 0; j < 16; j++)
            {
                m[j] = _mm256_set1_epi64x(static_cast<long long>(j < 8 ? root[j] : 0));
            }
            for (std::uint64_t i = 0; i < Blake2xbStream::kBlockBytes / 64; i += 4)
            {
                __m256i h[8], v[16];
                for (int j = 0; j < 8; j++)
                {
                    h[j] = _mm256_set1_epi64x(static_cast<long long>(kIV[j]));
                }
                h[0] = _mm256_xor_si256(h[0], _mm256_set1_epi64x(static_cast<long long>(kLeafP0)));
                h[1] = _mm256_xor_si256(
                    h[1], _mm256_setr_epi64x(
                              static_cast<long long>(kLeafP1 | i), static_cast<long long>(kLeafP1 | (i + 1)),
                              static_cast<long long>(kLeafP1 | (i + 2)), static_cast<long long>(kLeafP1 | (i + 3))));
                h[2] = _mm256_xor_si256(h[2], _mm256_set1_epi64x(static_cast<long long>(kLeafP2)));
                for (int j = 0; j < 8; j++)
                {
                    v[j] = h[j];
                    v[j + 8] = _mm256_set1_epi64x(static_cast<long long>(kIV[j]));
                }
                v[12] = _mm256_xor_si256(v[12], _mm256_set1_epi64x(64));
                v[14] = _mm256_xor_si256(v[14], _mm256_set1_epi64x(-1));
#define FHTO_G(a, b, c, d, x, y)                                                            \
    do                                                                                      \
    {                                                                                       \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), x);                           \
        v[d] = _mm256_shuffle_epi32(_mm256_xor_si256(v[d], v[a]), _MM_SHUFFLE(2, 3, 0, 1)); \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                                \
        v[b] = _mm256_shuffle_epi8(_mm256_xor_si256(v[b], v[c]), r24);                      \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), y);                           \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), r16);                      \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                                \
        const __m256i t_ = _mm256_xor_si256(v[b], v[c]);                                    \
        v[b] = _mm256_xor_si256(_mm256_srli_epi64(t_, 63), _mm256_add_epi64(t_, t_));       \
    } while (0)
                FHTO_BLAKE2B_ROUNDS(FHTO_G);
#undef FHTO_G
                alignas(32) std::uint64_t lanes[8][4];
                for (int j = 0; j < 8; j++)
                {
                    _mm256_store_si256(
                        reinterpret_cast<__m256i *>(lanes[j]), _mm256_xor_si256(h[j], _mm256_xor_si256(v[j], v[j + 8])));
                }
                for (int lane = 0; lane < 4; lane++)
                {
                    std::uint64_t w[8];
                    for (int j = 0; j < 8; j++)
                    {
                        w[j] = lanes[j][lane];
                    }
                    store_words(out + 64 * (i + lane), w, 8);
                }
            }
        }

        __attribute__((target("avx512f"))) void leaves_avx512(const std::uint64_t root[8], std::uint8_t *out) noexcept
        {
            __m512i m[16];
            for (int j = 0; j < 16; j++)
            {
                m[j] = _mm512_set1_epi64(static_cast<long long>(j < 8 ? root[j] : 0));
            }
            const __m512i lane_index = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
            for (std::uint64_t i = 0; i < Blake2xbStream::kBlockBytes / 64; i += 8)
            {
                __m512i h[8], v[16];
                for (int j = 0; j < 8; j++)
                {
                    h[j] = _mm512_set1_epi64(static_cast<long long>(kIV[j]));
                }
                h[0] = _mm512_xor_si512(h[0], _mm512_set1_epi64(static_cast<long long>(kLeafP0)));
                h[1] = _mm512_xor_si512(
                    h[1], _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(kLeafP1 | i)), lane_index));
                h[2] = _mm512_xor_si512(h[2], _mm512_set1_epi64(static_cast<long long>(kLeafP2)));
                for (int j = 0; j < 8; j++)
                {
                    v[j] = h[j];
                    v[j + 8] = _mm512_set1_epi64(static_cast<long long>(kIV[j]));
                }
                v[12] = _mm512_xor_si512(v[12], _mm512_set1_epi64(64));
                v[14] = _mm512_xor_si512(v[14], _mm512_set1_epi64(-1));
#define FHTO_G(a, b, c, d, x, y)                                  \
    do                                                            \
    {                                                             \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), x); \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 32); \
        v[c] = _mm512_add_epi64(v[c], v[d]);                      \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 24); \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), y); \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 16); \
        v[c] = _mm512_add_epi64(v[c], v[d]);                      \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 63); \
    } while (0)
                FHTO_BLAKE2B_ROUNDS(FHTO_G);
#undef FHTO_G
                alignas(64) std::uint64_t lanes[8][8];
                for (int j = 0; j < 8; j++)
                {
                    _mm512_store_si512(lanes[j], _mm512_xor_si512(h[j], _mm512_xor_si512(v[j], v[j + 8])));
                }
                for (int lane = 0; lane < 8; lane++)
                {
                    std::uint64_t w[8];
                    for (int j = 0; j < 8; j++)
                    {
                        w[j] = lanes[j][lane];
                    }
                    store_words(out + 64 * (i + lane), w, 8);
                }
            }
        }
#endif

        using LeavesFn = void (*)(const std::uint64_t *, std::uint8_t *) noexcept;

        struct Backend
        {
            LeavesFn fn = leaves_scalar;
            const char *name = "scalar";
            Backend()
            {
                // FHTO_BLAKE2XB=scalar|avx2 forces a slower path (the tests compare every path with SEAL).
                const char *forced = std::getenv("FHTO_BLAKE2XB");
                const std::string want = forced ? forced : "";
                if (want == "scalar")
                {
                    return;
                }
#ifdef FHTO_X86_SIMD
                if (want != "avx2" && __builtin_cpu_supports("avx512f"))
                {
                    fn = leaves_avx512;
                    name = "avx512";
                }
                else if (__builtin_cpu_supports("avx2"))
                {
                    fn = leaves_avx2;
                    name = "avx2";
                }
#endif
            }
        };

        const Backend &backend() noexcept
        {
            static const Backend b;
            return b;
        }
    } // namespace

    const char *blake2xb_backend() noexcept
    {
        return backend().name;
    }

    Seed derive_seed(SeedPurpose purpose, std::uint64_t seed, std::uint64_t index) noexcept
    {
        static constexpr char kKeygenTag[] = "fhto.keygen.v1";
        static constexpr char kEncryptTag[] = "fhto.encrypt.v1";
        static constexpr char kBatchTag[] = "fhto.batch.v1";
        static constexpr char kPartyTag[] = "fhto.party.v1";
        static constexpr char kFloodTag[] = "fhto.flood.v1";
        const char *tag = purpose == SeedPurpose::keygen    ? kKeygenTag
                          : purpose == SeedPurpose::encrypt ? kEncryptTag
                          : purpose == SeedPurpose::batch   ? kBatchTag
                          : purpose == SeedPurpose::party   ? kPartyTag
                                                            : kFloodTag;
        const std::size_t tag_len = std::strlen(tag);

        std::uint8_t key[sizeof(kEncryptTag) - 1 + 8];
        std::memcpy(key, tag, tag_len);
        std::uint8_t message[8];
        for (int b = 0; b < 8; b++)
        {
            key[tag_len + b] = static_cast<std::uint8_t>(seed >> (8 * b));
            message[b] = static_cast<std::uint8_t>(index >> (8 * b));
        }
        std::uint8_t digest[64];
        // Lengths are constants within BLAKE2b's limits (key <= 64, digest 64), so it cannot fail.
        blake2b(digest, sizeof(digest), message, sizeof(message), key, tag_len + 8);
        Seed out;
        for (std::size_t i = 0; i < out.size(); i++)
        {
            std::uint64_t w = 0;
            for (int b = 7; b >= 0; b--)
            {
                w = (w << 8) | digest[8 * i + static_cast<std::size_t>(b)];
            }
            out[i] = w;
        }
        return out;
    }

    void Blake2xbStream::refill() noexcept
    {
        // Root: BLAKE2b keyed by the 64-byte seed (the key block), over the 8-byte counter, with
        // blake2xb's parameter block (digest 64, key 64, fanout 1, depth 1, xof_length 4096).
        std::uint64_t h[8];
        std::memcpy(h, kIV, sizeof(h));
        h[0] ^= 64ULL | (64ULL << 8) | (1ULL << 16) | (1ULL << 24);
        h[1] ^= static_cast<std::uint64_t>(kBlockBytes) << 32;
        std::uint64_t m[16] = {};
        std::memcpy(m, seed_.data(), 64);
        compress(h, m, 128, false);
        std::memset(m, 0, sizeof(m));
        m[0] = counter_;
        compress(h, m, 136, true);
        backend().fn(h, buffer_);
        counter_++;
        head_ = 0;
    }

    void Blake2xbStream::generate(std::uint8_t *out, std::size_t count) noexcept
    {
        while (count)
        {
            if (head_ == kBlockBytes)
            {
                refill();
            }
            const std::size_t n = std::min(count, kBlockBytes - head_);
            std::memcpy(out, buffer_ + head_, n);
            head_ += n;
            out += n;
            count -= n;
        }
    }
} // namespace fhto
