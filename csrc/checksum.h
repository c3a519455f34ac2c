#pragma once

#include <cstddef>
#include <cstdint>

namespace fhto
{
    /**
    CRC-32C (Castagnoli) of a byte range, continuing from `crc` (0 to start).

    Detects accidental corruption of serialized objects; it is not a MAC. Uses the SSE4.2
    instruction where the CPU has it, a table otherwise. Never throws.
    */
    std::uint32_t crc32c(const void *data, std::size_t size, std::uint32_t crc = 0) noexcept;
} // namespace fhto
