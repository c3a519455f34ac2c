#include "prng.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include "dispatch.h"
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

// Half a BLAKE2b round: G on the four columns, or on the four diagonals, of the working vector,
// with the message word indices (from the round's sigma) as literals.
#define FHTO_BLAKE2B_COLUMNS(G, s0, s1, s2, s3, s4, s5, s6, s7) \
    G(0, 4, 8, 12, s0, s1);                                     \
    G(1, 5, 9, 13, s2, s3);                                     \
    G(2, 6, 10, 14, s4, s5);                                    \
    G(3, 7, 11, 15, s6, s7)
#define FHTO_BLAKE2B_DIAGONALS(G, s0, s1, s2, s3, s4, s5, s6, s7) \
    G(0, 5, 10, 15, s0, s1);                                      \
    G(1, 6, 11, 12, s2, s3);                                      \
    G(2, 7, 8, 13, s4, s5);                                       \
    G(3, 4, 9, 14, s6, s7)

// One BLAKE2b round as its two halves, each run by H(HALF, its eight message word indices).
#define FHTO_BLAKE2B_ROUND(H, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    H(FHTO_BLAKE2B_COLUMNS, s0, s1, s2, s3, s4, s5, s6, s7);                                        \
    H(FHTO_BLAKE2B_DIAGONALS, s8, s9, s10, s11, s12, s13, s14, s15)

// Rounds 1 to 11 of BLAKE2b (round 0's sigma is the identity).
#define FHTO_BLAKE2B_ROUNDS_1_TO_11(H)                                                  \
    FHTO_BLAKE2B_ROUND(H, 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);        \
    FHTO_BLAKE2B_ROUND(H, 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);        \
    FHTO_BLAKE2B_ROUND(H, 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);        \
    FHTO_BLAKE2B_ROUND(H, 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);        \
    FHTO_BLAKE2B_ROUND(H, 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);        \
    FHTO_BLAKE2B_ROUND(H, 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);        \
    FHTO_BLAKE2B_ROUND(H, 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);        \
    FHTO_BLAKE2B_ROUND(H, 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);        \
    FHTO_BLAKE2B_ROUND(H, 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);        \
    FHTO_BLAKE2B_ROUND(H, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);        \
    FHTO_BLAKE2B_ROUND(H, 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3)

// BLAKE2b's twelve rounds, fully unrolled, for any half-round runner H (scalar or SIMD): each G
// gets its message word indices as constants, so it can skip the words its caller knows are zero
// (those outside the mask kMsg in scope) and keep the others in registers.
#define FHTO_BLAKE2B_ROUNDS(H)                                                          \
    FHTO_BLAKE2B_ROUND(H, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);        \
    FHTO_BLAKE2B_ROUNDS_1_TO_11(H)

// The plain half-round runner: G on the four columns or diagonals in turn.
#define FHTO_HALF(HALF, ...) HALF(FHTO_G, __VA_ARGS__)

// Whether message word x may be nonzero (bit x of kMsg).
#define FHTO_MSG_USED(x) (((kMsg >> (x)) & 1U) != 0)

        inline std::uint64_t rotr(std::uint64_t x, int n) noexcept
        {
            return (x >> n) | (x << (64 - n));
        }

        /** BLAKE2b's G on words a, b, c, d of v with message words x, y. */
        inline void g(std::uint64_t v[16], int a, int b, int c, int d, std::uint64_t x, std::uint64_t y) noexcept
        {
            v[a] = v[a] + x + v[b];
            v[d] = rotr(v[d] ^ v[a], 32);
            v[c] = v[c] + v[d];
            v[b] = rotr(v[b] ^ v[c], 24);
            v[a] = v[a] + y + v[b];
            v[d] = rotr(v[d] ^ v[a], 16);
            v[c] = v[c] + v[d];
            v[b] = rotr(v[b] ^ v[c], 63);
        }

        /** One BLAKE2b compression of a 128-byte block m (as 16 words) into h; words outside kMsg are zero. */
        template <unsigned kMsg>
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
#define FHTO_G(a, b, c, d, x, y)      \
    do                                \
    {                                 \
        if (FHTO_MSG_USED(x))         \
        {                             \
            v[a] = v[a] + m[x];       \
        }                             \
        v[a] = v[a] + v[b];           \
        v[d] = rotr(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];           \
        v[b] = rotr(v[b] ^ v[c], 24); \
        if (FHTO_MSG_USED(y))         \
        {                             \
            v[a] = v[a] + m[y];       \
        }                             \
        v[a] = v[a] + v[b];           \
        v[d] = rotr(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];           \
        v[b] = rotr(v[b] ^ v[c], 63); \
    } while (0)
            FHTO_BLAKE2B_ROUNDS(FHTO_HALF);
#undef FHTO_G
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

        // The root's parameter block (digest 64, key 64, fanout 1, depth 1, xof_length 4096); its
        // other words are zero.
        constexpr std::uint64_t kRootP0 = 64ULL | (64ULL << 8) | (1ULL << 16) | (1ULL << 24);
        constexpr std::uint64_t kRootP1 = static_cast<std::uint64_t>(Blake2xbStream::kBlockBytes) << 32;

        // Parameter-block words of blake2xb's leaves (digest 64, leaf_length 64, inner_length 64,
        // xof_length 4096); only word 1's low half, the node offset, differs between leaves.
        constexpr std::uint64_t kLeafP0 = 64ULL | (64ULL << 32);
        constexpr std::uint64_t kLeafP1 = static_cast<std::uint64_t>(Blake2xbStream::kBlockBytes) << 32;
        constexpr std::uint64_t kLeafP2 = 64ULL << 8;

        // Which message words may be nonzero: the key block and a leaf's block (the root hash) hold
        // 64 bytes and then zeros; the root's second block holds the 8-byte counter and then zeros.
        constexpr unsigned kHalfMsg = 0xFFU;
        constexpr unsigned kCounterMsg = 0x1U;

        // The most roots one call computes at once (one per AVX-512 lane).
        constexpr std::size_t kMaxRoots = 8;

        /**
        The root hashes of blocks counter .. counter + count - 1 (count <= kMaxRoots) into roots[0 ..
        count - 1], from the key block's chain value. roots has room for kMaxRoots: the SIMD versions
        compute whole groups of lanes.
        */
        void roots_scalar(const std::uint64_t chain[8], std::uint64_t counter, std::size_t count,
                          std::uint64_t (*roots)[8]) noexcept
        {
            for (std::size_t k = 0; k < count; k++)
            {
                std::uint64_t m[16] = {};
                m[0] = counter + k;
                std::memcpy(roots[k], chain, 64);
                compress<kCounterMsg>(roots[k], m, 136, true);
            }
        }

        /** The 4096-byte block of one root: its 64 leaves, each a 64-byte digest. */
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
                compress<kHalfMsg>(h, m, 64, true);
                store_words(out + 64 * i, h, 8);
            }
        }

#ifdef FHTO_X86_SIMD
        // x86 is little-endian: the SIMD paths store a digest's words as they are.

#define FHTO_G(a, b, c, d, x, y)                                                            \
    do                                                                                      \
    {                                                                                       \
        if (FHTO_MSG_USED(x))                                                               \
        {                                                                                   \
            v[a] = _mm256_add_epi64(v[a], m[x]);                                            \
        }                                                                                   \
        v[a] = _mm256_add_epi64(v[a], v[b]);                                                \
        v[d] = _mm256_shuffle_epi32(_mm256_xor_si256(v[d], v[a]), _MM_SHUFFLE(2, 3, 0, 1)); \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                                \
        v[b] = _mm256_shuffle_epi8(_mm256_xor_si256(v[b], v[c]), r24);                      \
        if (FHTO_MSG_USED(y))                                                               \
        {                                                                                   \
            v[a] = _mm256_add_epi64(v[a], m[y]);                                            \
        }                                                                                   \
        v[a] = _mm256_add_epi64(v[a], v[b]);                                                \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), r16);                      \
        v[c] = _mm256_add_epi64(v[c], v[d]);                                                \
        const __m256i t_ = _mm256_xor_si256(v[b], v[c]);                                    \
        v[b] = _mm256_xor_si256(_mm256_srli_epi64(t_, 63), _mm256_add_epi64(t_, t_));       \
    } while (0)

        /** BLAKE2b's rounds on four independent states, one per lane; words outside kMsg are zero. */
        template <unsigned kMsg>
        __attribute__((target("avx2"), always_inline)) inline void rounds_avx2(
            __m256i v[16], const __m256i m[16]) noexcept
        {
            const __m256i r24 = _mm256_setr_epi8(
                3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
            const __m256i r16 = _mm256_setr_epi8(
                2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
            FHTO_BLAKE2B_ROUNDS(FHTO_HALF);
        }
#undef FHTO_G

        /** Stores lane i of the rows r (words 0..7 of four digests) as the 64 bytes at out + 64 * i. */
        __attribute__((target("avx2"), always_inline)) inline void store_lanes_avx2(
            const __m256i r[8], std::uint8_t *out) noexcept
        {
            // Two 4x4 transposes of 64-bit words: words 0..3 of each digest, then words 4..7.
            for (int half = 0; half < 2; half++)
            {
                const __m256i *q = r + 4 * half;
                const __m256i t0 = _mm256_unpacklo_epi64(q[0], q[1]);
                const __m256i t1 = _mm256_unpackhi_epi64(q[0], q[1]);
                const __m256i t2 = _mm256_unpacklo_epi64(q[2], q[3]);
                const __m256i t3 = _mm256_unpackhi_epi64(q[2], q[3]);
                std::uint8_t *o = out + 32 * half;
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(o), _mm256_permute2x128_si256(t0, t2, 0x20));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(o + 64), _mm256_permute2x128_si256(t1, t3, 0x20));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(o + 128), _mm256_permute2x128_si256(t0, t2, 0x31));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(o + 192), _mm256_permute2x128_si256(t1, t3, 0x31));
            }
        }

        __attribute__((target("avx2"))) void roots_avx2(const std::uint64_t chain[8], std::uint64_t counter,
                                                        std::size_t count, std::uint64_t (*roots)[8]) noexcept
        {
            for (std::size_t k = 0; k < count; k += 4)
            {
                __m256i m[16], v[16], h[8];
                for (int j = 0; j < 16; j++)
                {
                    m[j] = _mm256_setzero_si256();
                }
                m[0] = _mm256_add_epi64(
                    _mm256_set1_epi64x(static_cast<long long>(counter + k)), _mm256_setr_epi64x(0, 1, 2, 3));
                for (int j = 0; j < 8; j++)
                {
                    h[j] = _mm256_set1_epi64x(static_cast<long long>(chain[j]));
                    v[j] = h[j];
                    v[j + 8] = _mm256_set1_epi64x(static_cast<long long>(kIV[j]));
                }
                v[12] = _mm256_xor_si256(v[12], _mm256_set1_epi64x(136));
                v[14] = _mm256_xor_si256(v[14], _mm256_set1_epi64x(-1));
                rounds_avx2<kCounterMsg>(v, m);
                for (int j = 0; j < 8; j++)
                {
                    h[j] = _mm256_xor_si256(h[j], _mm256_xor_si256(v[j], v[j + 8]));
                }
                store_lanes_avx2(h, reinterpret_cast<std::uint8_t *>(roots[k]));
            }
        }

        __attribute__((target("avx2"))) void leaves_avx2(const std::uint64_t root[8], std::uint8_t *out) noexcept
        {
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
                rounds_avx2<kHalfMsg>(v, m);
                for (int j = 0; j < 8; j++)
                {
                    h[j] = _mm256_xor_si256(h[j], _mm256_xor_si256(v[j], v[j + 8]));
                }
                store_lanes_avx2(h, out + 64 * i);
            }
        }

// G on group k of eight states, v[k]; the groups share the message, whose word x is
// FHTO_MSG512(x). Rotation by 32 is a dword shuffle, which more execution ports take than
// rotations.
#define FHTO_G(a, b, c, d, x, y)                                                           \
    do                                                                                     \
    {                                                                                      \
        if (FHTO_MSG_USED(x))                                                              \
        {                                                                                  \
            v[k][a] = _mm512_add_epi64(v[k][a], FHTO_MSG512(x));                           \
        }                                                                                  \
        v[k][a] = _mm512_add_epi64(v[k][a], v[k][b]);                                      \
        v[k][d] = _mm512_shuffle_epi32(_mm512_xor_si512(v[k][d], v[k][a]), _MM_PERM_CDAB); \
        v[k][c] = _mm512_add_epi64(v[k][c], v[k][d]);                                      \
        v[k][b] = _mm512_ror_epi64(_mm512_xor_si512(v[k][b], v[k][c]), 24);                \
        if (FHTO_MSG_USED(y))                                                              \
        {                                                                                  \
            v[k][a] = _mm512_add_epi64(v[k][a], FHTO_MSG512(y));                           \
        }                                                                                  \
        v[k][a] = _mm512_add_epi64(v[k][a], v[k][b]);                                      \
        v[k][d] = _mm512_ror_epi64(_mm512_xor_si512(v[k][d], v[k][a]), 16);                \
        v[k][c] = _mm512_add_epi64(v[k][c], v[k][d]);                                      \
        v[k][b] = _mm512_ror_epi64(_mm512_xor_si512(v[k][b], v[k][c]), 63);                \
    } while (0)

// Half a round on each of the N groups v[0..N-1] in turn (which measured faster than interleaving
// the groups G by G or operation by operation).
#define FHTO_HALF512(HALF, ...)    \
    for (int k = 0; k < N; k++)    \
    {                              \
        HALF(FHTO_G, __VA_ARGS__); \
    }

// One G on each of the N groups in turn.
#define FHTO_G_GROUPS(a, b, c, d, x, y) \
    for (int k = 0; k < N; k++)         \
    {                                   \
        FHTO_G(a, b, c, d, x, y);       \
    }

#define FHTO_MSG512(x) m[x]
        /** BLAKE2b's rounds on N groups of eight independent states, one per lane; words outside kMsg are zero. */
        template <unsigned kMsg, int N>
        __attribute__((target("avx512f"), always_inline)) inline void rounds_avx512(
            __m512i (*v)[16], const __m512i m[16]) noexcept
        {
            FHTO_BLAKE2B_ROUNDS(FHTO_HALF512);
        }
#undef FHTO_MSG512

        /**
        Stores lane i of the rows r (words 0..7 of eight digests) as the 64 bytes at out + 64 * i:
        an 8x8 transpose of 64-bit words, then eight full-width stores.
        */
        __attribute__((target("avx512f"), always_inline)) inline void store_lanes_avx512(
            const __m512i r[8], std::uint8_t *out) noexcept
        {
            // t[2k] holds words 2k, 2k+1 of the even lanes, t[2k+1] those of the odd lanes, one lane
            // per 128-bit block; two stages of block shuffles then gather each lane's four blocks.
            __m512i t[8], u[8];
            for (int k = 0; k < 4; k++)
            {
                t[2 * k] = _mm512_unpacklo_epi64(r[2 * k], r[2 * k + 1]);
                t[2 * k + 1] = _mm512_unpackhi_epi64(r[2 * k], r[2 * k + 1]);
            }
            for (int odd = 0; odd < 2; odd++)
            {
                u[4 * odd + 0] = _mm512_shuffle_i64x2(t[odd], t[odd + 2], _MM_SHUFFLE(2, 0, 2, 0));
                u[4 * odd + 1] = _mm512_shuffle_i64x2(t[odd], t[odd + 2], _MM_SHUFFLE(3, 1, 3, 1));
                u[4 * odd + 2] = _mm512_shuffle_i64x2(t[odd + 4], t[odd + 6], _MM_SHUFFLE(2, 0, 2, 0));
                u[4 * odd + 3] = _mm512_shuffle_i64x2(t[odd + 4], t[odd + 6], _MM_SHUFFLE(3, 1, 3, 1));
            }
            for (int odd = 0; odd < 2; odd++)
            {
                const __m512i *q = u + 4 * odd;
                _mm512_storeu_si512(out + 64 * (0 + odd), _mm512_shuffle_i64x2(q[0], q[2], _MM_SHUFFLE(2, 0, 2, 0)));
                _mm512_storeu_si512(out + 64 * (2 + odd), _mm512_shuffle_i64x2(q[1], q[3], _MM_SHUFFLE(2, 0, 2, 0)));
                _mm512_storeu_si512(out + 64 * (4 + odd), _mm512_shuffle_i64x2(q[0], q[2], _MM_SHUFFLE(3, 1, 3, 1)));
                _mm512_storeu_si512(out + 64 * (6 + odd), _mm512_shuffle_i64x2(q[1], q[3], _MM_SHUFFLE(3, 1, 3, 1)));
            }
        }

        __attribute__((target("avx512f"))) void roots_avx512(const std::uint64_t chain[8], std::uint64_t counter,
                                                             std::size_t count, std::uint64_t (*roots)[8]) noexcept
        {
            __m512i m[16], v[1][16], h[8];
            for (int j = 0; j < 16; j++)
            {
                m[j] = _mm512_setzero_si512();
            }
            m[0] = _mm512_add_epi64(
                _mm512_set1_epi64(static_cast<long long>(counter)), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
            for (int j = 0; j < 8; j++)
            {
                h[j] = _mm512_set1_epi64(static_cast<long long>(chain[j]));
                v[0][j] = h[j];
                v[0][j + 8] = _mm512_set1_epi64(static_cast<long long>(kIV[j]));
            }
            v[0][12] = _mm512_xor_si512(v[0][12], _mm512_set1_epi64(136));
            v[0][14] = _mm512_xor_si512(v[0][14], _mm512_set1_epi64(-1));
            rounds_avx512<kCounterMsg, 1>(v, m);
            for (int j = 0; j < 8; j++)
            {
                h[j] = _mm512_ternarylogic_epi64(h[j], v[0][j], v[0][j + 8], 0x96);
            }
            store_lanes_avx512(h, reinterpret_cast<std::uint8_t *>(roots[0]));
        }

        __attribute__((target("avx512f"))) void leaves_avx512(const std::uint64_t root[8], std::uint8_t *out) noexcept
        {
            // Each step computes two groups of eight leaves together (32 state registers): where a
            // vector operation has a two-cycle latency (as on Zen 5), one group's four dependent G
            // chains per half-round leave the vector units half idle; three groups would spill.
            constexpr int N = 2;
            constexpr unsigned kMsg = kHalfMsg;

            // Round 0's G on columns 0, 2 and 3 sees only words that are the same in every leaf
            // of this root, so it is computed once here; only column 1 holds the node offset.
            std::uint64_t pre[16];
            for (int j = 0; j < 8; j++)
            {
                pre[j] = kIV[j];
                pre[j + 8] = kIV[j];
            }
            pre[0] ^= kLeafP0;
            pre[1] ^= kLeafP1;
            pre[2] ^= kLeafP2;
            pre[12] ^= 64;
            pre[14] = ~pre[14];
            g(pre, 0, 4, 8, 12, root[0], root[1]);
            g(pre, 2, 6, 10, 14, root[4], root[5]);
            g(pre, 3, 7, 11, 15, root[6], root[7]);

            // The message words are broadcast where they are used (the compiler then keeps them
            // in registers or memory as pressure allows, which measured faster than an array).
#define FHTO_MSG512(x) _mm512_set1_epi64(static_cast<long long>(root[x]))
            const __m512i lane_index = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
            for (std::uint64_t i = 0; i < Blake2xbStream::kBlockBytes / 64; i += 8 * N)
            {
                __m512i v[N][16];
                for (int k = 0; k < N; k++)
                {
                    for (int j = 0; j < 16; j++)
                    {
                        v[k][j] = _mm512_set1_epi64(static_cast<long long>(pre[j]));
                    }
                    v[k][1] = _mm512_xor_si512(
                        v[k][1], _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(i + 8 * k)), lane_index));
                }
                // The rest of round 0, G by G across the groups (which measured faster here).
                FHTO_G_GROUPS(1, 5, 9, 13, 2, 3);
                FHTO_BLAKE2B_DIAGONALS(FHTO_G_GROUPS, 8, 9, 10, 11, 12, 13, 14, 15);
                FHTO_BLAKE2B_ROUNDS_1_TO_11(FHTO_HALF512);
                for (int k = 0; k < N; k++)
                {
                    __m512i h[8];
                    for (int j = 0; j < 8; j++)
                    {
                        h[j] = _mm512_set1_epi64(static_cast<long long>(kIV[j]));
                    }
                    h[0] = _mm512_xor_si512(h[0], _mm512_set1_epi64(static_cast<long long>(kLeafP0)));
                    h[1] = _mm512_xor_si512(
                        h[1],
                        _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(kLeafP1 | (i + 8 * k))), lane_index));
                    h[2] = _mm512_xor_si512(h[2], _mm512_set1_epi64(static_cast<long long>(kLeafP2)));
                    for (int j = 0; j < 8; j++)
                    {
                        h[j] = _mm512_ternarylogic_epi64(h[j], v[k][j], v[k][j + 8], 0x96);
                    }
                    store_lanes_avx512(h, out + 64 * (i + 8 * k));
                }
            }
        }
#undef FHTO_MSG512
#undef FHTO_G_GROUPS
#undef FHTO_HALF512
#undef FHTO_G
#endif

        using RootsFn = void (*)(const std::uint64_t *, std::uint64_t, std::size_t, std::uint64_t (*)[8]) noexcept;
        using LeavesFn = void (*)(const std::uint64_t *, std::uint8_t *) noexcept;

        struct Backend
        {
            RootsFn roots = roots_scalar;
            LeavesFn leaves = leaves_scalar;
            const char *name = "scalar";
            Backend()
            {
                // FHTO_BLAKE2XB=scalar|avx2 forces a slower path (the tests compare every path with SEAL).
                const std::string want = detail::forced_path("FHTO_BLAKE2XB");
                if (want == "scalar")
                {
                    return;
                }
#ifdef FHTO_X86_SIMD
                if (want != "avx2" && __builtin_cpu_supports("avx512f"))
                {
                    roots = roots_avx512;
                    leaves = leaves_avx512;
                    name = "avx512";
                }
                else if (__builtin_cpu_supports("avx2"))
                {
                    roots = roots_avx2;
                    leaves = leaves_avx2;
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

    Blake2xbStream::Blake2xbStream(const Seed &seed) noexcept
    {
        // Root: BLAKE2b keyed by the 64-byte seed, with blake2xb's parameter block. Its first
        // block, the key padded to 128 bytes, is the same for every refill: compress it once.
        std::memcpy(chain_, kIV, sizeof(chain_));
        chain_[0] ^= kRootP0;
        chain_[1] ^= kRootP1;
        std::uint64_t m[16] = {};
        std::copy(seed.begin(), seed.end(), m);
        compress<kHalfMsg>(chain_, m, 128, false);
    }

    void Blake2xbStream::generate(std::uint8_t *out, std::size_t count) noexcept
    {
        const Backend &b = backend();
        while (count)
        {
            if (head_ == kBlockBytes)
            {
                // The root's second block is the 8-byte counter. The roots of the blocks this call
                // still needs (up to kMaxRoots) are computed together, in SIMD lanes when there are
                // several (one alone is faster in scalar code); whole blocks go straight to out, and
                // only a final partial block is buffered.
                const std::size_t blocks = std::min((count + kBlockBytes - 1) / kBlockBytes, kMaxRoots);
                alignas(64) std::uint64_t roots[kMaxRoots][8];
                if (blocks == 1)
                {
                    roots_scalar(chain_, counter_, 1, roots);
                }
                else
                {
                    b.roots(chain_, counter_, blocks, roots);
                }
                counter_ += blocks;
                for (std::size_t k = 0; k < blocks; k++)
                {
                    if (count < kBlockBytes)
                    {
                        b.leaves(roots[k], buffer_);
                        head_ = 0;
                        break;
                    }
                    b.leaves(roots[k], out);
                    out += kBlockBytes;
                    count -= kBlockBytes;
                }
                continue;
            }
            const std::size_t n = std::min(count, kBlockBytes - head_);
            std::memcpy(out, buffer_ + head_, n);
            head_ += n;
            out += n;
            count -= n;
        }
    }
} // namespace fhto
