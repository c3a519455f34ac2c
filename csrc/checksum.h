#pragma once

#include <cstddef>
#include <cstdint>

namespace fhto
{
    /**
    CRC-32C (Castagnoli) of a byte range, continuing from `crc` (0 to start).

    Detects accidental corruption of serialized objects; it is not a MAC. Uses carry-less
    multiply folding (VPCLMULQDQ), alone or alongside SSE4.2 crc32 chains, where the CPU has
    it, else eight interleaved crc32 chains, one chain, or a table. Never throws.
    */
    std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc = 0) noexcept;

    /**
    Name of the path crc32c uses: "hybrid512", "vpclmul512", "vpclmul256", "sse42x8", "sse42" or
    "table". FHTO_CRC set to one of these forces it (read at first use); a path the CPU lacks
    falls to the next one in that order that it has. All give the same results.
    */
    const char *crc32c_backend() noexcept;
} // namespace fhto
