#pragma once

// CRC-32C (the wire format's checksum), shared by the GPU kernels and their host driver: the
// reflected Castagnoli polynomial, a byte at a time from a 256-entry table the caller builds once
// (crc32c_table) and keeps where the code runs (device memory on the GPU).

#include <cstddef>
#include <cstdint>
#include <vector>
#include "cuda/arith.cuh"

namespace fhto
{
    namespace cuda
    {
        /** Fills table[256] with the CRC-32C of every byte value. */
        FHTO_HD void crc32c_table(std::uint32_t *table)
        {
            for (std::uint32_t i = 0; i < 256; i++)
            {
                std::uint32_t c = i;
                for (int k = 0; k < 8; k++)
                {
                    c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                }
                table[i] = c;
            }
        }

        /** CRC-32C of bytes[0, size), continuing from crc (0 to start): the engine's crc32c. */
        FHTO_HD std::uint32_t crc32c_bytes(const std::uint32_t *table, const std::uint8_t *bytes, std::size_t size, std::uint32_t crc)
        {
            crc = ~crc;
            for (std::size_t i = 0; i < size; i++)
            {
                crc = (crc >> 8) ^ table[(crc ^ bytes[i]) & 0xFFu];
            }
            return ~crc;
        }

        /**
        A CRC register (no inversions) times x^(8k) modulo the polynomial, both reflected: a
        register a piece of data later, for combining the CRCs of pieces computed apart. x8k is
        crc32c_shift_constant(table, k).
        */
        FHTO_HD std::uint32_t crc32c_multiply(std::uint32_t a, std::uint32_t b)
        {
            std::uint32_t product = 0;
            for (std::uint32_t m = 1u << 31; m; m >>= 1)
            {
                if (a & m)
                {
                    product ^= b;
                }
                b = (b & 1) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
            }
            return product;
        }

        /** x^(8k) modulo the polynomial, reflected: the register 1 run over k zero bytes. */
        FHTO_HD std::uint32_t crc32c_shift_constant(const std::uint32_t *table, std::uint64_t k)
        {
            std::uint32_t r = 1u << 31;
            for (std::uint64_t i = 0; i < k; i++)
            {
                r = (r >> 8) ^ table[r & 0xFFu];
            }
            return r;
        }

        /** The register of a piece from zero (no inversions): combined by crc32c_combine. */
        FHTO_HD std::uint32_t crc32c_register(const std::uint32_t *table, const std::uint8_t *bytes, std::size_t size)
        {
            std::uint32_t r = 0;
            for (std::size_t i = 0; i < size; i++)
            {
                r = (r >> 8) ^ table[(r ^ bytes[i]) & 0xFFu];
            }
            return r;
        }

        /**
        CRC-32C of `pieces` consecutive pieces of `piece` bytes (the last one `last` bytes) from
        their registers, continuing from crc: x_piece and x_last are the shift constants.
        */
        FHTO_HD std::uint32_t crc32c_combine(
            std::uint32_t crc, const std::uint32_t *registers, std::size_t pieces, std::uint32_t x_piece, std::uint32_t x_last)
        {
            std::uint32_t r = ~crc;
            for (std::size_t i = 0; i < pieces; i++)
            {
                r = crc32c_multiply(i + 1 == pieces ? x_last : x_piece, r) ^ registers[i];
            }
            return ~r;
        }

        /** A record's CRC is computed in pieces of this many bytes (one GPU thread each), then combined. */
        constexpr std::uint64_t kCrcPiece = 1024;

        FHTO_HD std::uint64_t crc_pieces(std::uint64_t record_bytes)
        {
            return (record_bytes + kCrcPiece - 1) / kCrcPiece;
        }

        /** The wire format's start for ciphertext k's check: CRC-32C of le64(k) from the header's checksum. */
        FHTO_HD std::uint32_t position_start(const std::uint32_t *table, std::uint32_t header_checksum, std::uint64_t k)
        {
            std::uint8_t index[8];
            for (int i = 0; i < 8; i++)
            {
                index[i] = static_cast<std::uint8_t>(k >> (8 * i));
            }
            return crc32c_bytes(table, index, 8, header_checksum);
        }

        /** What checking records of one size in pieces needs: the table and the two shift constants. */
        struct RecordCrc
        {
            std::uint32_t table[256];
            std::uint64_t record_bytes = 0;
            std::uint64_t pieces = 0;
            std::uint32_t x_piece = 0;
            std::uint32_t x_last = 0;
        };

        inline RecordCrc record_crc(std::uint64_t record_bytes)
        {
            RecordCrc c;
            crc32c_table(c.table);
            c.record_bytes = record_bytes;
            c.pieces = crc_pieces(record_bytes);
            c.x_piece = crc32c_shift_constant(c.table, kCrcPiece);
            c.x_last = crc32c_shift_constant(c.table, record_bytes - (c.pieces - 1) * kCrcPiece);
            return c;
        }

        /**
        Record k's check computed as the kernels compute it, on the host: each piece's register
        (crc32c_register), then crc32c_combine from the position's start.
        */
        inline std::uint32_t record_check_host(const RecordCrc &c, const std::uint8_t *record, std::uint32_t header_checksum, std::uint64_t k)
        {
            thread_local std::vector<std::uint32_t> registers;
            registers.resize(c.pieces);
            for (std::uint64_t p = 0; p < c.pieces; p++)
            {
                const std::uint64_t at = p * kCrcPiece;
                registers[p] = crc32c_register(c.table, record + at, c.record_bytes - at < kCrcPiece ? c.record_bytes - at : kCrcPiece);
            }
            return crc32c_combine(position_start(c.table, header_checksum, k), registers.data(), c.pieces, c.x_piece, c.x_last);
        }
    } // namespace cuda
} // namespace fhto
