#pragma once

// Kernels over a batch's records on the GPU, shared by encryption (encrypt.cu), the sum (sum.cu)
// and decryption (decrypt.cu): each record's CRC-32C in 1 KiB pieces, combined and compared with
// its stored check; the bytes every record of a context shares; the seeds of seeded records. A problem sets
// a bit in the record's flag word.

#include <cstddef>
#include <cstdint>
#include "cuda/encrypt.cuh"
#include "cuda/plan.h"

namespace fhto
{
    namespace cuda
    {
        namespace
        {
            __device__ std::size_t index()
            {
                return blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
            }

            constexpr unsigned kChecksum = 1, kCoefficient = 2, kLayout = 4;

            __global__ void crc_piece_kernel(
                const std::uint32_t *table, const std::uint8_t *records, std::uint64_t record_bytes, std::uint64_t cts,
                std::uint32_t *registers)
            {
                __shared__ std::uint32_t t[256];
                for (unsigned i = threadIdx.x; i < 256; i += blockDim.x)
                {
                    t[i] = table[i];
                }
                __syncthreads();
                const std::uint64_t pieces = crc_pieces(record_bytes), k = index();
                if (k < cts * pieces)
                {
                    const std::uint64_t at = (k % pieces) * kCrcPiece;
                    registers[k] = crc32c_register(t, records + (k / pieces) * record_bytes + at, min(kCrcPiece, record_bytes - at));
                }
            }

            __global__ void crc_compare_kernel(
                const std::uint32_t *table, const std::uint32_t *registers, std::uint64_t pieces, std::uint64_t first_ct,
                std::uint64_t cts, std::uint32_t header_checksum, std::uint32_t x_piece, std::uint32_t x_last,
                const std::uint8_t *checks, unsigned *flags)
            {
                const std::uint64_t ct = index();
                if (ct < cts)
                {
                    const std::uint32_t crc = crc32c_combine(
                        position_start(table, header_checksum, first_ct + ct), registers + ct * pieces, pieces, x_piece, x_last);
                    const std::uint8_t *c = checks + 4 * ct;
                    const std::uint32_t stored = c[0] | (c[1] << 8) | (c[2] << 16) | (static_cast<std::uint32_t>(c[3]) << 24);
                    if (crc != stored)
                    {
                        atomicOr(flags + ct, kChecksum);
                    }
                }
            }

            /** The bytes every record shares: the prefix, then the seed record's header. */
            __global__ void layout_kernel(
                const std::uint8_t *records, std::uint64_t record_bytes, std::uint64_t cts, const std::uint8_t *fixed,
                std::uint64_t prefix_bytes, std::uint64_t header_bytes, std::uint64_t header_at, unsigned *flags)
            {
                const std::uint64_t per = prefix_bytes + header_bytes, t = index();
                if (t < cts * per)
                {
                    const std::uint64_t ct = t / per, i = t % per;
                    const std::uint64_t at = i < prefix_bytes ? i : header_at + (i - prefix_bytes);
                    if (records[ct * record_bytes + at] != fixed[i])
                    {
                        atomicOr(flags + ct, kLayout);
                    }
                }
            }

            __global__ void seed_gather_kernel(const std::uint8_t *records, std::uint64_t cts, RecordLayout layout, std::uint64_t *seeds)
            {
                const std::uint64_t ct = index();
                if (ct < cts)
                {
                    read_seed(layout, records + ct * layout.record_bytes, seeds + 8 * ct);
                }
            }

            /**
            The first flagged record as a problem: as the CPU path orders them, a bad checksum
            first, then a record in another form, then a bad coefficient.
            */
            inline SumProblem first_problem(const unsigned *flags, std::size_t count, std::size_t batch)
            {
                SumProblem p;
                for (std::size_t k = 0; k < count; k++)
                {
                    if (flags[k])
                    {
                        p.kind = flags[k] & kChecksum ? SumProblem::checksum
                                                      : (flags[k] & kLayout ? SumProblem::layout : SumProblem::coefficient);
                        p.batch = batch;
                        p.ciphertext = k;
                        break;
                    }
                }
                return p;
            }
        } // namespace
    } // namespace cuda
} // namespace fhto
