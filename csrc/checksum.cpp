#include "checksum.h"

#include <array>
#include <cstring>

namespace fhto
{
    namespace detail
    {
        constexpr std::uint32_t kPoly = 0x82F63B78u; // reflected Castagnoli polynomial

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

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FHTO_HAVE_SSE42_CRC 1
        __attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(
            const unsigned char *p, std::size_t n, std::uint32_t crc) noexcept
        {
            std::uint64_t c = ~crc;
            while (n >= 8)
            {
                std::uint64_t word;
                std::memcpy(&word, p, 8);
                c = __builtin_ia32_crc32di(c, word);
                p += 8;
                n -= 8;
            }
            auto c32 = static_cast<std::uint32_t>(c);
            while (n--)
            {
                c32 = __builtin_ia32_crc32qi(c32, *p++);
            }
            return ~c32;
        }
#endif
    } // namespace detail

    std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc) noexcept
    {
        auto p = static_cast<const unsigned char *>(data);
#ifdef FHTO_HAVE_SSE42_CRC
        static const bool have_sse42 = __builtin_cpu_supports("sse4.2");
        if (have_sse42)
        {
            return detail::crc32c_sse42(p, size, crc);
        }
#endif
        return detail::crc32c_table(p, size, crc);
    }
} // namespace fhto
