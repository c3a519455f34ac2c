#pragma once

// Encryption's per-coefficient steps, shared by the GPU path and its host drivers: SEAL's centred
// binomial noise from six stream bytes per coefficient, and the bit packing of residues (eight
// residues of b bits fill exactly b bytes, so a GPU thread packs eight without touching another's).

#include <cstdint>
#include "cuda/arith.cuh"

namespace fhto
{
    namespace cuda
    {
        FHTO_HD int popcount8(std::uint32_t x)
        {
#if defined(__CUDA_ARCH__)
            return __popc(x & 0xFFu);
#else
            return __builtin_popcount(x & 0xFFu);
#endif
        }

        /**
        SEAL's centred binomial noise (21 coin pairs, |e| <= 21) from six stream bytes: the
        popcounts of x0, x1 and x2 & 0x1F minus those of x3, x4 and x5 & 0x1F.
        */
        FHTO_HD int cbd_noise(const std::uint8_t x[6])
        {
            return popcount8(x[0]) + popcount8(x[1]) + popcount8(x[2] & 0x1Fu) - popcount8(x[3]) - popcount8(x[4]) -
                   popcount8(x[5] & 0x1Fu);
        }

        /** A small signed noise as a residue modulo q, as SEAL writes it. */
        FHTO_HD std::uint64_t noise_residue(int noise, std::uint64_t q)
        {
            const std::uint64_t flag = static_cast<std::uint64_t>(-static_cast<std::int64_t>(noise < 0));
            return static_cast<std::uint64_t>(static_cast<std::int64_t>(noise)) + (flag & q);
        }

        /**
        Packs residues in[8g .. 8g + 8) of `bits` bits each, least significant bit first, into
        out[g * bits .. (g + 1) * bits): the engine's bit packing of one group.
        */
        FHTO_HD void pack_group(const std::uint64_t *in, int bits, std::uint8_t *out)
        {
            unsigned __int128 acc = 0;
            int have = 0, written = 0;
            for (int k = 0; k < 8; k++)
            {
                acc |= static_cast<unsigned __int128>(in[k] & ((bits == 64) ? ~0ULL : ((1ULL << bits) - 1))) << have;
                have += bits;
                while (have >= 8)
                {
                    out[written++] = static_cast<std::uint8_t>(acc);
                    acc >>= 8;
                    have -= 8;
                }
            }
        }

        /** The inverse of pack_group: residues out[0 .. 8) of `bits` bits from in[0 .. bits). */
        FHTO_HD void unpack_group(const std::uint8_t *in, int bits, std::uint64_t *out)
        {
            unsigned __int128 acc = 0;
            int have = 0, read = 0;
            const std::uint64_t mask = (bits == 64) ? ~0ULL : ((1ULL << bits) - 1);
            for (int k = 0; k < 8; k++)
            {
                while (have < bits)
                {
                    acc |= static_cast<unsigned __int128>(in[read++]) << have;
                    have += 8;
                }
                out[k] = static_cast<std::uint64_t>(acc) & mask;
                acc >>= bits;
                have -= bits;
            }
        }
    } // namespace cuda
} // namespace fhto
