#pragma once

// BLAKE2b and SEAL's Blake2xb stream, shared by the CUDA kernels and their host drivers (the host
// tests compare them with the engine's Blake2xbStream, itself checked against SEAL). Blake2xb's 64
// output blocks per 4 KiB refill are independent compressions: on the GPU one thread makes one.

#include <cstdint>
#include "cuda/arith.cuh"

namespace fhto
{
    namespace cuda
    {
        FHTO_HD std::uint64_t rotr64(std::uint64_t x, int n)
        {
            return (x >> n) | (x << (64 - n));
        }

        FHTO_HD std::uint64_t blake2b_iv(int i)
        {
            switch (i)
            {
            case 0: return 0x6a09e667f3bcc908ULL;
            case 1: return 0xbb67ae8584caa73bULL;
            case 2: return 0x3c6ef372fe94f82bULL;
            case 3: return 0xa54ff53a5f1d36f1ULL;
            case 4: return 0x510e527fade682d1ULL;
            case 5: return 0x9b05688c2b3e6c1fULL;
            case 6: return 0x1f83d9abfb41bd6bULL;
            default: return 0x5be0cd19137e2179ULL;
            }
        }

#define FHTO_B2_G(a, b, c, d, x, y)         \
    v[a] = v[a] + v[b] + (x);               \
    v[d] = rotr64(v[d] ^ v[a], 32);         \
    v[c] = v[c] + v[d];                     \
    v[b] = rotr64(v[b] ^ v[c], 24);         \
    v[a] = v[a] + v[b] + (y);               \
    v[d] = rotr64(v[d] ^ v[a], 16);         \
    v[c] = v[c] + v[d];                     \
    v[b] = rotr64(v[b] ^ v[c], 63);

#define FHTO_B2_ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    FHTO_B2_G(0, 4, 8, 12, m[s0], m[s1])                                                   \
    FHTO_B2_G(1, 5, 9, 13, m[s2], m[s3])                                                   \
    FHTO_B2_G(2, 6, 10, 14, m[s4], m[s5])                                                  \
    FHTO_B2_G(3, 7, 11, 15, m[s6], m[s7])                                                  \
    FHTO_B2_G(0, 5, 10, 15, m[s8], m[s9])                                                  \
    FHTO_B2_G(1, 6, 11, 12, m[s10], m[s11])                                                \
    FHTO_B2_G(2, 7, 8, 13, m[s12], m[s13])                                                 \
    FHTO_B2_G(3, 4, 9, 14, m[s14], m[s15])

        /** One BLAKE2b compression of the 16-word block m into h (t0: bytes so far; last: final block). */
        FHTO_HD void blake2b_compress(std::uint64_t h[8], const std::uint64_t m[16], std::uint64_t t0, bool last)
        {
            std::uint64_t v[16];
            for (int i = 0; i < 8; i++)
            {
                v[i] = h[i];
                v[i + 8] = blake2b_iv(i);
            }
            v[12] ^= t0;
            if (last)
            {
                v[14] = ~v[14];
            }
            FHTO_B2_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            FHTO_B2_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
            FHTO_B2_ROUND(11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);
            FHTO_B2_ROUND(7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);
            FHTO_B2_ROUND(9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);
            FHTO_B2_ROUND(2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);
            FHTO_B2_ROUND(12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);
            FHTO_B2_ROUND(13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);
            FHTO_B2_ROUND(6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);
            FHTO_B2_ROUND(10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);
            FHTO_B2_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            FHTO_B2_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
            for (int i = 0; i < 8; i++)
            {
                h[i] ^= v[i] ^ v[i + 8];
            }
        }

#undef FHTO_B2_ROUND
#undef FHTO_B2_G

        /** Bytes of one Blake2xb refill, as SEAL's Blake2xbPRNG makes them. */
        constexpr std::uint64_t kStreamBlockBytes = 4096;

        /**
        The root of refill `counter` of the stream of a 64-byte seed (8 little-endian words):
        BLAKE2b keyed by the seed over le64(counter), with Blake2xb's parameter block (digest 64,
        key 64, fanout 1, depth 1, xof_length 4096).
        */
        FHTO_HD void blake2xb_root(const std::uint64_t seed[8], std::uint64_t counter, std::uint64_t root[8])
        {
            for (int i = 0; i < 8; i++)
            {
                root[i] = blake2b_iv(i);
            }
            root[0] ^= 64ULL | (64ULL << 8) | (1ULL << 16) | (1ULL << 24);
            root[1] ^= kStreamBlockBytes << 32;
            std::uint64_t m[16] = {};
            for (int i = 0; i < 8; i++)
            {
                m[i] = seed[i];
            }
            blake2b_compress(root, m, 128, false);
            for (int i = 0; i < 16; i++)
            {
                m[i] = 0;
            }
            m[0] = counter;
            blake2b_compress(root, m, 136, true);
        }

        /** Leaf `leaf` (0 to 63) of a refill: its 64 output bytes as 8 little-endian words. */
        FHTO_HD void blake2xb_leaf(const std::uint64_t root[8], std::uint64_t leaf, std::uint64_t out[8])
        {
            std::uint64_t m[16] = {};
            for (int i = 0; i < 8; i++)
            {
                m[i] = root[i];
                out[i] = blake2b_iv(i);
            }
            out[0] ^= 64ULL | (64ULL << 32);
            out[1] ^= (kStreamBlockBytes << 32) | leaf;
            out[2] ^= 64ULL << 8;
            blake2b_compress(out, m, 64, true);
        }

        /**
        The first `words` 64-bit words of the stream of `seed` (little-endian, as the stream's bytes
        read 8 at a time), on the host, with the same functions a GPU thread runs per leaf.
        */
        inline void blake2xb_words_host(const std::uint64_t seed[8], std::uint64_t *out, std::uint64_t words)
        {
            std::uint64_t root[8], leaf[8];
            for (std::uint64_t w = 0; w < words; w += 8)
            {
                const std::uint64_t block = w / (kStreamBlockBytes / 8), index = (w / 8) % (kStreamBlockBytes / 64);
                if (index == 0)
                {
                    blake2xb_root(seed, block, root);
                }
                blake2xb_leaf(root, index, leaf);
                for (std::uint64_t i = 0; i < 8 && w + i < words; i++)
                {
                    out[w + i] = leaf[i];
                }
            }
        }
    } // namespace cuda
} // namespace fhto
