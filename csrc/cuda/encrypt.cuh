#pragma once

// Seeded secret-key encryption of one batch, as the CPU engine writes it (symmetric.cpp, wire.h),
// shared by the GPU kernels and their host driver. Per ciphertext k with bootstrap seed B_k:
//   bootstrap stream = Blake2xb(B_k): words [0, 8) are the public seed, bytes [64, 64 + 6n) the noise;
//   a  = SEAL's uniform sampling from Blake2xb(public seed) (uniform.cuh);
//   e  = SEAL's centred binomial noise (sample.cuh), then the forward NTT;
//   m  = the encoded values (encode.cuh), then the forward NTT;
//   c0 = -(a s + e) + m modulo each prime;
// then the record: the context's template bytes, c0 (as words or bit-packed) and the public seed,
// and its CRC-32C from the position's start (crc.cuh).

#include <cstddef>
#include <cstdint>
#include "cuda/arith.cuh"
#include "cuda/crc.cuh"
#include "cuda/encode.cuh"
#include "cuda/sample.cuh"
#include "cuda/uniform.cuh"

namespace fhto
{
    namespace cuda
    {
        constexpr int kMaxLimbs = 8;


        FHTO_HD std::uint64_t add_mod(std::uint64_t a, std::uint64_t b, std::uint64_t q)
        {
            const std::uint64_t r = a + b;
            return r >= q ? r - q : r;
        }

        /**
        c0 = -(a s + e) + m modulo q, every input below q; s_quot = floor(s 2^64 / q). The same
        residue as SEAL's dyadic product, add, negate and add.
        */
        FHTO_HD std::uint64_t c0_coefficient(
            std::uint64_t m, std::uint64_t a, std::uint64_t s, std::uint64_t s_quot, std::uint64_t e, std::uint64_t q)
        {
            std::uint64_t t = mul_shoup_lazy(a, s, s_quot, q);
            t = t >= q ? t - q : t;
            t = add_mod(t, e, q);
            t = t ? q - t : 0;
            return add_mod(t, m, q);
        }

        /**
        Where a ciphertext's bytes go in its record (the engine's serialization, packed or not):
        c0's limbs from c0_offset, each limb n words of 8 bytes (bits[l] = 0) or n * bits[l] / 8
        packed bytes; the 64-byte public seed at seed_offset; everything else is the template.
        */
        struct RecordLayout
        {
            std::uint64_t record_bytes = 0;
            std::uint64_t c0_offset = 0;
            std::uint64_t c0_bytes = 0;
            std::uint64_t seed_offset = 0;
            int bits[kMaxLimbs] = {};
        };

        /** A record layout from its sizes and each limb's packed bits (0: 8-byte words). */
        inline RecordLayout record_layout(
            std::uint64_t record_bytes, std::uint64_t c0_offset, std::uint64_t c0_bytes, std::uint64_t seed_offset,
            const int *bits, std::size_t limbs)
        {
            RecordLayout r;
            r.record_bytes = record_bytes;
            r.c0_offset = c0_offset;
            r.c0_bytes = c0_bytes;
            r.seed_offset = seed_offset;
            for (std::size_t l = 0; l < limbs && l < static_cast<std::size_t>(kMaxLimbs); l++)
            {
                r.bits[l] = bits[l];
            }
            return r;
        }

        /** Byte offset of limb l's coefficients inside c0. */
        FHTO_HD std::uint64_t limb_offset(const RecordLayout &r, std::uint64_t n, int l)
        {
            std::uint64_t at = 0;
            for (int k = 0; k < l; k++)
            {
                at += r.bits[k] ? n * static_cast<std::uint64_t>(r.bits[k]) / 8 : 8 * n;
            }
            return at;
        }

        /** Writes coefficients [8g, 8g + 8) of one limb of c0 into the record (packed or as words). */
        FHTO_HD void write_group(const RecordLayout &r, std::uint64_t n, int l, std::uint64_t g, const std::uint64_t *c0, std::uint8_t *record)
        {
            std::uint8_t *limb = record + r.c0_offset + limb_offset(r, n, l);
            if (r.bits[l])
            {
                pack_group(c0 + 8 * g, r.bits[l], limb + g * static_cast<std::uint64_t>(r.bits[l]));
                return;
            }
            for (int k = 0; k < 8; k++)
            {
                const std::uint64_t w = c0[8 * g + k];
                for (int b = 0; b < 8; b++)
                {
                    limb[8 * (8 * g + k) + b] = static_cast<std::uint8_t>(w >> (8 * b));
                }
            }
        }

        /**
        Reads coefficients [8g, 8g + 8) of one limb of polynomial `poly` (0: c0, 1: c1, stored
        after c0 in full ciphertexts) from a record, packed or as words.
        */
        FHTO_HD void read_group(
            const RecordLayout &r, std::uint64_t n, int l, std::uint64_t g, const std::uint8_t *record, std::uint64_t out[8],
            int poly = 0)
        {
            const std::uint8_t *limb = record + r.c0_offset + poly * r.c0_bytes + limb_offset(r, n, l);
            if (r.bits[l])
            {
                unpack_group(limb + g * static_cast<std::uint64_t>(r.bits[l]), r.bits[l], out);
                return;
            }
            for (int k = 0; k < 8; k++)
            {
                std::uint64_t w = 0;
                for (int b = 7; b >= 0; b--)
                {
                    w = (w << 8) | limb[8 * (8 * g + k) + b];
                }
                out[k] = w;
            }
        }

        /** Reads the public seed (eight little-endian words) from a record. */
        FHTO_HD void read_seed(const RecordLayout &r, const std::uint8_t *record, std::uint64_t seed[8])
        {
            for (int i = 0; i < 8; i++)
            {
                std::uint64_t w = 0;
                for (int b = 7; b >= 0; b--)
                {
                    w = (w << 8) | record[r.seed_offset + 8 * i + b];
                }
                seed[i] = w;
            }
        }

        /** Writes the public seed (eight little-endian words) into the record. */
        FHTO_HD void write_seed(const RecordLayout &r, const std::uint64_t *seed, std::uint8_t *record)
        {
            for (int i = 0; i < 64; i++)
            {
                record[r.seed_offset + i] = static_cast<std::uint8_t>(seed[i / 8] >> (8 * (i % 8)));
            }
        }
    } // namespace cuda
} // namespace fhto
